/**
 * Input text into lines (Ndjson `boundedLines`), however it is cut into chunks. Law: the lines are
 * the text split at each `\n`, in order, each without one trailing `\r`, or, past the bound, its
 * size in UTF-8 alone; none is lost or made up, whether a line lies in one chunk or across several.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Schema, Stream } from "effect"
import { boundedLines } from "../src/Run/Ndjson.js"

/** Characters that matter here: line ends, a carriage return, one, two and three bytes of UTF-8. */
const Char = Schema.Literal("a", "b", "\n", "\r", "é", "✓", " ")

/** The model: the whole text split at `\n` (no line at all for no chunk). */
const model = (chunks: ReadonlyArray<string>, maxBytes: number) =>
  chunks.length === 0 ? [] : chunks.join("").split("\n").map((line) => {
    const bytes = Buffer.byteLength(line)
    return bytes > maxBytes ? { tooLong: bytes } : line.endsWith("\r") ? line.slice(0, -1) : line
  })

describe("boundedLines", () => {
  it.prop(
    "law: the lines are the text split at each newline, in order, without a trailing carriage return, or their size past the bound, whatever the chunks",
    {
      chunks: Schema.Array(Schema.Array(Char).pipe(Schema.maxItems(12))).pipe(Schema.maxItems(8)),
      maxBytes: Schema.Int.pipe(Schema.between(0, 12))
    },
    ({ chunks, maxBytes }) => {
      const texts = chunks.map((c) => c.join(""))
      const lines = Effect.runSync(Stream.runCollect(boundedLines(Stream.fromIterable(texts), maxBytes)))
      expect(Chunk.toReadonlyArray(lines)).toStrictEqual(model(texts, maxBytes))
    },
    { fastCheck: { numRuns: 500 } }
  )
})
