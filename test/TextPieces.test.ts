/**
 * A bulk window's contacts are kept as UTF-8 in pieces of a fixed size (internal/textPieces.ts).
 * Laws: whatever the strings and the piece size, each string reads back, copies and measures as it
 * was written, in its own place; and stays so while later builders reuse the scratch buffer.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { byteLengthAt, bytesAt, copyAt, TextPiecesBuilder } from "../src/internal/textPieces.js"

/** Well-formed text (a contact is JSON, which escapes a lone surrogate): ASCII, two-, three- and four-byte UTF-8. */
const Text = Schema.Array(Schema.Literal("a", "é", "€", "😀", "\"", "\\")).pipe(Schema.maxItems(30))

describe("TextPieces", () => {
  it.prop(
    "law: each string reads back, copies and measures as written, whatever the piece size",
    [Schema.Array(Text).pipe(Schema.maxItems(50)), Schema.Int.pipe(Schema.between(1, 120))],
    ([texts, size]) => {
      const strings = texts.map((t) => t.join(""))
      const b = new TextPiecesBuilder(size)
      for (const s of strings) b.add(s)
      const pieces = b.finish()
      strings.forEach((s, k) => {
        expect(bytesAt(pieces, k).toString("utf8")).toBe(s)
        expect(byteLengthAt(pieces, k)).toBe(Buffer.byteLength(s))
        const into = Buffer.alloc(byteLengthAt(pieces, k) + 2, 0x7c)
        expect(copyAt(pieces, k, into, 1)).toBe(Buffer.byteLength(s))
        expect(into.toString("utf8")).toBe(`|${s}|`)
      })
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "law: a finished builder's strings stay as written while later builders, which take over its scratch buffer, write theirs",
    [Schema.Array(Schema.Array(Text).pipe(Schema.maxItems(20))).pipe(Schema.minItems(2), Schema.maxItems(6)), Schema.Int.pipe(Schema.between(1, 120))],
    ([windows, size]) => {
      const written = windows.map((texts) => {
        const strings = texts.map((t) => t.join(""))
        const b = new TextPiecesBuilder(size)
        for (const s of strings) b.add(s)
        return { strings, pieces: b.finish() }
      })
      for (const { pieces, strings } of written) strings.forEach((s, k) => expect(bytesAt(pieces, k).toString("utf8")).toBe(s))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("a window's thousands of strings, and places with none, each read back in its own place", () => {
    const b = new TextPiecesBuilder(256 * 1024)
    const strings = Array.from({ length: 5_000 }, (_, k) => (k % 7 === 3 ? undefined : `{"Email":"c${k}@example.com"}`))
    for (const s of strings) s === undefined ? b.none() : b.add(s)
    const pieces = b.finish()
    expect(pieces.at.length).toBe(3 * strings.length)
    strings.forEach((s, k) => {
      if (s === undefined) expect(pieces.at[k * 3]).toBe(-1)
      else expect(bytesAt(pieces, k).toString("utf8")).toBe(s)
    })
  })
})
