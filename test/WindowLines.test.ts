/**
 * The lines of the bulk-capable path leave in order (internal/windowLines.ts `linesOut`).
 * Law: whatever the chunks, and however a window's lines come in pieces, every line leaves once,
 * in the order of the units, a window's pieces one after the other; a window's pieces are made
 * only once the lines before it have left.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Schema, Stream } from "effect"
import { Consent } from "../src/Consent.js"
import { prepareLine } from "../src/Delivery/Prepare.js"
import { WindowPackBuilder } from "../src/Delivery/WindowPackBuilder.js"
import type { Result } from "../src/Domain/Outcome.js"
import { holdItems } from "../src/internal/heldItems.js"
import { type Line, type LinePieces, linesOut, windowLines } from "../src/internal/windowLines.js"
import { Mapping } from "../src/Mapping.js"

/** A unit: lines already made (a number of them), or a window's lines in pieces of these sizes. */
const Unit = Schema.Union(
  Schema.Struct({ made: Schema.Int.pipe(Schema.between(0, 3)) }),
  Schema.Struct({ pieces: Schema.Array(Schema.Int.pipe(Schema.between(1, 5))).pipe(Schema.maxItems(4)) })
)

const lineOf = (n: number): Line<number> => [n, { line: n } as unknown as Result]

describe("linesOut", () => {
  it.effect.prop(
    "law: every line leaves once, in the units' order, a window's pieces in turn and made only after the lines before",
    {
      units: Schema.Array(Unit).pipe(Schema.maxItems(12)),
      chunkSizes: Schema.Array(Schema.Int.pipe(Schema.between(1, 4))).pipe(Schema.minItems(1), Schema.maxItems(6))
    },
    ({ chunkSizes, units }) =>
      Effect.gen(function*() {
        let n = 0
        const left: Array<number> = []
        const settled = units.map((u): { readonly out: ReadonlyArray<Line<number>> | LinePieces<number> } => {
          if ("made" in u) return { out: Array.from({ length: u.made }, () => lineOf(n++)) }
          const pieces = u.pieces.map((size) => Array.from({ length: size }, () => n++))
          const first = pieces[0]?.[0]
          let next = 0
          return {
            out: {
              _tag: "LinePieces",
              next: Effect.sync(() => {
                // Made only once every line before the window has left.
                if (next === 0 && first !== undefined) expect(left.length).toBe(first)
                const piece = pieces[next++]
                return piece === undefined ? undefined : piece.map(lineOf)
              })
            }
          }
        })
        const chunks: Array<Chunk.Chunk<(typeof settled)[number]>> = []
        for (let at = 0, c = 0; at < settled.length; c++) {
          const size = chunkSizes[c % chunkSizes.length]!
          chunks.push(Chunk.unsafeFromArray(settled.slice(at, at + size)))
          at += size
        }
        yield* Stream.fromChunks(...chunks).pipe(
          Stream.pipeThroughChannel(linesOut<number, never>()),
          Stream.runForEach(([m]) => Effect.sync(() => left.push(m)))
        )
        expect(left).toEqual(Array.from({ length: n }, (_, i) => i))
      })
  )

  it.effect("a window of many pieces gives every event its line, in order: each update its own outcome, each drop its own", () =>
    Effect.gen(function*() {
      const mapping = Mapping.make()
      const consent = Consent.make()
      // 1,300 events, every third a page view (dropped): more than two pieces.
      const builder = new WindowPackBuilder()
      for (let line = 1; line <= 1300; line++) {
        const text = line % 3 === 0
          ? JSON.stringify({ type: "page", properties: { path: `/p${line}` } })
          : JSON.stringify({ type: "track", event: "Signed Up", messageId: `m-${line}`, context: { traits: { email: `c${line}@example.com` } } })
        builder.add(prepareLine(text, line, consent.resolve, mapping, mapping.preset.datatypes))
      }
      const pack = builder.finish()
      const lines = Array.from({ length: 1300 }, (_, i) => ({ line: i + 1, text: "" }))
      const pieces = windowLines({
        pack,
        items: holdItems(lines),
        read: (m) => m,
        outcomeOf: { of: (p, k) => ({ outcome: "delivered", action: p.body.Action, status: 201, attempts: 1, via: "bulk", job: k }) },
        notAttempted: undefined,
        labels: []
      })
      const made: Array<Line<{ readonly line: number }>> = []
      for (let piece = yield* pieces.next; piece !== undefined; piece = yield* pieces.next) made.push(...piece)
      expect(made.map(([m]) => m.line)).toEqual(lines.map((l) => l.line))
      expect(made.map(([, r]) => r.line)).toEqual(lines.map((l) => l.line))
      // The k-th update has the k-th outcome; a page view is dropped.
      let k = 0
      for (const [m, r] of made) {
        if (m.line % 3 === 0) expect(r.outcome.outcome).toBe("dropped")
        else expect(r.outcome).toMatchObject({ outcome: "delivered", job: k++ })
        expect(r.messageId).toBe(m.line % 3 === 0 ? undefined : `m-${m.line}`)
      }
    }))
})
