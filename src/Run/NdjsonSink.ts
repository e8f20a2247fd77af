/** NDJSON out: outcome lines on stdout and dead letters appended to a file, a chunk at a time. */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { deadLetterLine, type Result } from "../Domain/Outcome.js"
import { OutcomeLines } from "./OutcomeLines.js"
import * as Stdout from "./Stdout.js"

export class OutputUnwritable extends Data.TaggedError("OutputUnwritable")<{
  readonly path: string
  readonly detail: string
  /** Default: the dead-letter file. */
  readonly what?: string
}> {
  override get message(): string {
    return `Cannot open the ${this.what ?? "dead-letter file"} ${this.path}: ${this.detail}. Check the path and its permissions.`
  }
}

/**
 * Lines written at once at most: about 50 KB of bulk lines. Written as text, 1,024 lines were a
 * string over 128 KB, made in V8's old generation at once (its large-object space) every few
 * milliseconds in a backfill; as bytes, a piece is still one buffer of this size, not a chunk's.
 */
const WRITE_LINES = 256

/** A piece's outcome lines, as UTF-8, and its dead letters, as text. */
const piece = (lines: OutcomeLines, results: ReadonlyArray<Result>, start: number, now: Date): { readonly out: Buffer; readonly dead: string } => {
  let dead = ""
  for (let i = start; i < Math.min(results.length, start + WRITE_LINES); i++) {
    const r = results[i]!
    lines.add(r)
    const d = deadLetterLine(r, now)
    if (d !== undefined) dead += `${d}\n`
  }
  return { out: lines.take(), dead }
}

/**
 * Opens the dead-letter file (if any) for appending; the sink writes once per chunk (or piece of
 * one), not per event, with functions made once: a generator made per chunk was compiled again
 * for chunk after chunk (docs/ARCHITECTURE.md, "Bulk delivery").
 */
export const ndjsonSink = (deadLetters: Option.Option<string>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const file = Option.isSome(deadLetters)
      ? Option.some(
        yield* fs.open(deadLetters.value, { flag: "a" }).pipe(
          Effect.mapError((e) => new OutputUnwritable({ path: deadLetters.value, detail: e.message }))
        )
      )
      : Option.none()
    const encoder = new TextEncoder()
    const lines = new OutcomeLines()
    // A piece at a time: a bulk window's chunk is up to 15,000 lines, about 3 MB as bytes all
    // at once, where the rest of a long-jobs backfill takes 150 MB.
    const write = ({ now, results, start }: { readonly results: ReadonlyArray<Result>; readonly start: number; readonly now: Date }) => {
      const { dead, out } = piece(lines, results, start, now)
      return Option.isSome(file) && dead !== ""
        ? Effect.zipRight(file.value.writeAll(encoder.encode(dead)), Stdout.write(out))
        : Stdout.write(out)
    }
    return (results: ReadonlyArray<Result>) =>
      Effect.suspend(() => {
        const now = new Date()
        const pieces: Array<{ readonly results: ReadonlyArray<Result>; readonly start: number; readonly now: Date }> = []
        for (let start = 0; start < results.length; start += WRITE_LINES) pieces.push({ results, start, now })
        return Effect.forEach(pieces, write, { discard: true })
      })
  })
