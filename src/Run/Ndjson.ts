/** NDJSON in: a file or stdin as a stream of lines, read with back-pressure, never whole. */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import type { Readable } from "node:stream"
import { safeStringify } from "../internal/safeStringify.js"

export class InputUnreadable extends Data.TaggedError("InputUnreadable")<{
  readonly source: string
  readonly detail: string
}> {
  override get message(): string {
    return `Cannot read ${this.source === "-" ? "standard input" : this.source}: ${this.detail}`
  }
}

/** Fails unless `source` is stdin (`-`) or a readable file: checked before anything is sent. */
export const checkSource = (source: string): Effect.Effect<void, InputUnreadable, FileSystem.FileSystem> =>
  source === "-" ? Effect.void : Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const info = yield* fs.stat(source).pipe(Effect.mapError((e) => new InputUnreadable({ source, detail: e.message })))
    if (info.type !== "File") return yield* Effect.fail(new InputUnreadable({ source, detail: "not a file" }))
  })

/**
 * The text of a file, or of stdin for `-`, without a leading UTF-8 byte order mark (editors on
 * Windows write one; it is not part of the first event). Read as text by Node's own stream:
 * FileSystem.stream's fresh 64 KB buffer per read, decoded after, peaked at about 90 MB more over
 * 50,000 events (measured).
 */
const readText = (source: string): Stream.Stream<string, InputUnreadable, FileSystem.FileSystem> => {
  const fail = (e: unknown) => new InputUnreadable({ source, detail: e instanceof Error ? e.message : String(e) })
  const text = (open: () => Readable) => NodeStream.fromReadable<InputUnreadable, string>(open, fail)
  const chunks = source === "-"
    ? text(() => process.stdin.setEncoding("utf8"))
    : Stream.unwrap(Effect.as(checkSource(source), text(() => Fs.createReadStream(source, { encoding: "utf8", highWaterMark: 64 * 1024 }))))
  return withoutBom(chunks)
}

/** Text chunks without a byte order mark at the very start. */
export const withoutBom = <E, R>(chunks: Stream.Stream<string, E, R>): Stream.Stream<string, E, R> =>
  Stream.suspend(() => {
    let first = true
    return Stream.map(chunks, (chunk) => {
      if (!first || chunk === "") return chunk
      first = false
      return chunk.charCodeAt(0) === 0xfeff ? chunk.slice(1) : chunk
    })
  })

/** Lines of a file, or of stdin for `-`, read with back-pressure. */
export const readLines = (source: string): Stream.Stream<string, InputUnreadable, FileSystem.FileSystem> =>
  Stream.splitLines(readText(source))

/** A line over the bound: only its size was kept. */
export interface LineTooLong {
  readonly tooLong: number
}

/** 1 MiB: far above any real event, far below what the bin's 128 MB heap can hold several of. */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024

/**
 * `readLines`, except that a line longer than `maxBytes` (UTF-8) is never held: its bytes are
 * counted and dropped as they arrive, and it comes out as its size alone, to be dead-lettered.
 */
export const readBoundedLines = (
  source: string,
  maxBytes: number
): Stream.Stream<string | LineTooLong, InputUnreadable, FileSystem.FileSystem> =>
  boundedLines(readText(source), maxBytes)

/** Text chunks into lines (`\n` or `\r\n`), each either whole or, past `maxBytes`, its size alone. */
export const boundedLines = <E, R>(
  chunks: Stream.Stream<string, E, R>,
  maxBytes: number
): Stream.Stream<string | LineTooLong, E, R> =>
  Stream.suspend(() => {
    let pending: Array<string> = []
    let pendingBytes = 0
    let dropped: number | undefined
    /** The line that `last` ends: the pieces before it joined to it only if there are any (the usual line lies in one chunk). */
    const end = (last: string): string | LineTooLong => {
      const text = pending.length === 0 ? last : (pending.push(last), pending.join(""))
      const line: string | LineTooLong = dropped !== undefined ? { tooLong: dropped } : text.endsWith("\r") ? text.slice(0, -1) : text
      pending = []
      pendingBytes = 0
      dropped = undefined
      return line
    }
    const split = (chunk: string): Array<string | LineTooLong> => {
      const out: Array<string | LineTooLong> = []
      for (let start = 0;;) {
        const nl = chunk.indexOf("\n", start)
        const piece = nl < 0 ? chunk.slice(start) : chunk.slice(start, nl)
        const bytes = Buffer.byteLength(piece)
        if (dropped !== undefined) dropped += bytes
        else if (pendingBytes + bytes > maxBytes) {
          dropped = pendingBytes + bytes
          pending = []
        } else if (nl < 0) {
          pending.push(piece)
          pendingBytes += bytes
        }
        if (nl < 0) return out
        out.push(end(dropped === undefined ? piece : ""))
        start = nl + 1
      }
    }
    return chunks.pipe(
      Stream.mapConcat(split),
      Stream.concat(Stream.suspend(() => (pending.length > 0 || dropped !== undefined ? Stream.make(end("")) : Stream.empty)))
    )
  })

/**
 * Dead-letter records back into event lines for `replay`: a record's `event` is the original line,
 * cut out of the record as it was written (never parsed and written again: an event 10,000 levels
 * deep cannot be re-stringified), and its `text` the line that was not JSON. A record that kept
 * its original by reference is passed on whole: delivery dead-letters it again, saying where the
 * original is. A line that is not a record is passed on as it is, to be judged like any input line.
 */
export const deadLetterEvents = <E, R>(lines: Stream.Stream<string, E, R>): Stream.Stream<string, E, R> =>
  Stream.map(lines, (line) => readDeadLetter(line).text)

/**
 * One dead-letter record: the original line it keeps (or the line itself) and, for a record of
 * refused properties alone (`only`), those properties, so a replay sends them and nothing else.
 */
export const readDeadLetter = (line: string): { readonly text: string; readonly only?: ReadonlyArray<string> } => {
  let record: unknown
  try {
    record = JSON.parse(line)
  } catch {
    return { text: line } // not JSON: delivered as is, so it is dead-lettered again with the reason
  }
  if (!isRecord(record)) return { text: line }
  const text = originalOf(record, line)
  const only = record["only"]
  return Array.isArray(only) && only.every((p) => typeof p === "string") ? { text, only } : { text }
}

/** The original line a dead-letter record keeps, or the line itself. */
const originalOf = (record: Readonly<Record<string, unknown>>, line: string): string => {
  if (typeof record["text"] === "string") return record["text"]
  if (!("event" in record)) return line
  const trimmed = line.trim()
  // Written before the event came last: `{"event":…,"error":…}`. Such a record never held a deep event
  // (writing it crashed), so writing the event again is safe; a string was a line that was not JSON.
  if (trimmed.startsWith(`{"event":`)) {
    const event = record["event"]
    return typeof event === "string" ? event : safeStringify(event, { maxDepth: 1000, maxLength: line.length }) ?? line
  }
  // The head holds only strings, numbers and a list of property names, and a `"` inside a JSON string
  // is always escaped, so the first `,"event":` is the key of the original, which runs to the record's
  // closing brace.
  const key = trimmed.indexOf(`,"event":`)
  return key < 0 ? line : trimmed.slice(key + `,"event":`.length, -1)
}

const isRecord = (v: unknown): v is Readonly<Record<string, unknown>> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && "error" in v && "reason" in v && "at" in v
