/**
 * A bulk window's contacts are kept as UTF-8 in pieces of a fixed size (internal/textPieces.ts).
 * Law: whatever the strings and the piece size, each string reads back, copies and measures as it
 * was written, in its own place.
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
})
