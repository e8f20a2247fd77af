/**
 * A bulk window's lines, made a piece at a time as they are written. Made whole (a window is
 * thousands of events), its results outlived V8's young generation and were collected only with
 * the old one: a piece's die young (BENCHMARKS.md, "Issue 28, bulk: a gathering of our own").
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as MetricLabel from "effect/MetricLabel"
import type { Outcome, Result } from "../Domain/Outcome.js"
import type { Item } from "../Delivery/Prepare.js"
import { type Packed, PIECES, type WindowPack } from "../Delivery/WindowPack.js"
import type { OutcomeOf } from "./bulkSettle.js"
import type { HeldItems } from "./heldItems.js"
import { lazyRaw, logResultNow, packedResult } from "./results.js"

export type Line<M> = readonly [M, Result]

/** A window's lines still to be made: the next piece, or undefined once all are. */
export interface LinePieces<M> {
  readonly _tag: "LinePieces"
  readonly next: Effect.Effect<ReadonlyArray<Line<M>> | undefined>
}

/** What a window's lines are made from. */
interface Window<M> {
  readonly pack: WindowPack
  readonly items: HeldItems<M>
  readonly read: (m: M) => Item
  /** Each update's outcome, by its place among the updates; none when the window was not sent. */
  readonly outcomeOf: OutcomeOf | undefined
  readonly notAttempted: Outcome | undefined
  readonly labels: ReadonlyArray<MetricLabel.MetricLabel>
}

/** Makes a window's lines a piece at a time. A class, not a generator made per window (see JobOutcomes). */
class LineMaker<M> {
  private decisions: Iterator<Packed> | undefined
  private i = 0
  private k = 0
  constructor(private readonly window: Window<M>) {}

  piece(): Effect.Effect<ReadonlyArray<Line<M>> | undefined> {
    const { items, labels, notAttempted, outcomeOf, pack, read } = this.window
    const decisions = this.decisions ??= pack.each()
    const out: Array<Line<M>> = []
    let warnings: Array<Effect.Effect<void>> | undefined
    for (let d = decisions.next(); !d.done; d = decisions.next()) {
      const p = d.value
      const i = this.i++
      const item = items.at(i)
      const r = p._tag === "Done" ? lazyRaw(p.result, pack, i) : packedResult(p, outcomeOf?.of(p, this.k++) ?? notAttempted!, pack, i)
      // Counted now, not an Effect an event: a window's results are thousands at once.
      const warning = logResultNow(r, p.mapped ?? "unmapped", p._tag === "Done" ? undefined : p.email, read(item).position, labels)
      if (warning !== undefined) (warnings ??= []).push(warning)
      out.push([item, r])
      // A piece of lines for each piece of decisions, as packed.
      if (out.length === PIECES.decisions) break
    }
    const made = out.length > 0 ? out : undefined
    return warnings === undefined ? Effect.succeed(made) : Effect.as(Effect.all(warnings, { discard: true }), made)
  }
}

/** A settled window's lines, each read from its pack when its piece is made. */
export const windowLines = <M>(window: Window<M>): LinePieces<M> => {
  const maker = new LineMaker(window)
  return { _tag: "LinePieces", next: Effect.suspend(() => maker.piece()) }
}

/** What reaches `linesOut` for each unit: its lines made, or a window's still to be made. */
export interface Settled<M> {
  readonly out: ReadonlyArray<Line<M>> | LinePieces<M>
}

type LinesChannel<M, E> = Channel.Channel<Chunk.Chunk<Line<M>>, Chunk.Chunk<Settled<M>>, E, E, unknown, unknown>

/**
 * Lines in order, as chunks: lines made already pass as they are; a window's are made and handed
 * on a piece at a time, after the lines before it.
 */
export const linesOut = <M, E>(): LinesChannel<M, E> => {
  const flush = (lines: Array<Line<M>>) => (lines.length === 0 ? Channel.void : Channel.write(Chunk.unsafeFromArray(lines)))
  const emit = (settled: Iterator<Settled<M>>, lines: Array<Line<M>>): LinesChannel<M, E> => {
    for (let s = settled.next(); !s.done; s = settled.next()) {
      const out = s.value.out
      if (!("_tag" in out)) {
        for (const line of out) lines.push(line)
        continue
      }
      const pieces = (): LinesChannel<M, E> =>
        Channel.unwrap(Effect.map(out.next, (made) => (made === undefined ? emit(settled, []) : Channel.zipRight(Channel.write(Chunk.unsafeFromArray(made)), pieces()))))
      return Channel.zipRight(flush(lines), pieces())
    }
    return Channel.zipRight(flush(lines), reader)
  }
  const reader: LinesChannel<M, E> = Channel.readWithCause({
    onInput: (chunk) => emit(chunk[Symbol.iterator](), []),
    onFailure: Channel.failCause,
    onDone: Channel.succeed
  })
  return reader
}
