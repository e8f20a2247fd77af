/**
 * A bulk window waits packed (WindowPack): its decisions and texts deflated, and its updates'
 * contacts as their jobs send them, read back when its jobs are sent and when a result needs its
 * text. Law: what is read back is what was packed, for any text (any UTF-16, lone surrogates
 * included) and any decision (sent, dropped, malformed), and each contact is its update's.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { Consent } from "../src/Consent.js"
import { type Prepared, prepareLine } from "../src/Delivery/Prepare.js"
import type { WindowPack } from "../src/Delivery/WindowPack.js"
import { WindowPackBuilder } from "../src/Delivery/WindowPackBuilder.js"
import { bytesAt } from "../src/internal/textPieces.js"
import { contactEntry } from "../src/Mailjet/MailjetShapes.js"
import { Mapping } from "../src/Mapping.js"

const mapping = Mapping.make()
const consent = Consent.make()

/** Any UTF-16 string: about one unit in thirty is a surrogate, often alone. */
const Units = Schema.Array(Schema.Int.pipe(Schema.between(0, 0xffff))).pipe(Schema.maxItems(40))
const text = (units: ReadonlyArray<number>) => String.fromCharCode(...units)

const Line = Schema.Union(
  // An event that is sent: its name and a property carry any text.
  // Of one of a few contacts: a window's contacts often have several events.
  Schema.Struct({ kind: Schema.Literal("event"), name: Units, consent: Schema.Boolean, contact: Schema.Int.pipe(Schema.between(0, 3)) }),
  // Not mapped (dropped), with its parsed form; once with the units as they are, not escaped
  // (JSON.parse takes a lone surrogate in a string, UTF-8 cannot carry it).
  Schema.Struct({ kind: Schema.Literal("page", "page-unescaped"), path: Units }),
  // Not JSON at all, or JSON that is not an object.
  Schema.Struct({ kind: Schema.Literal("raw"), units: Units }),
  Schema.Struct({ kind: Schema.Literal("missing") })
)

/** Each update's contact as the pack gives it to the jobs, and its contact's first update's place. */
const contactsOf = (pack: WindowPack) => {
  const { entries, firsts } = pack.contacts()
  return Array.from(firsts, (first, k) => [bytesAt(entries, k).toString("utf8"), first] as const)
}

/** What the jobs must get: each update's contact as contactEntry writes it, and who it is. */
const expectedContacts = (prepared: ReadonlyArray<Prepared>) => {
  const sends = prepared.filter((p): p is Extract<Prepared, { _tag: "Send" }> => p._tag === "Send")
  return sends.map((p) => [contactEntry(p.body), sends.findIndex((q) => q.email === p.email)] as const)
}

const lineOf = (l: typeof Line.Type, i: number): string | undefined => {
  switch (l.kind) {
    case "event":
      return JSON.stringify({
        type: "track",
        event: "Signed Up",
        messageId: `m-${i}`,
        context: { traits: { email: `c${l.contact}@example.com`, first_name: text(l.name) }, consent: { marketing: l.consent } }
      })
    case "page":
      return JSON.stringify({ type: "page", properties: { path: text(l.path) } })
    case "page-unescaped":
      return `{"type":"page","properties":{"path":"${text(l.path.filter((u) => u >= 0x20 && u !== 0x22 && u !== 0x5c))}"}}`
    case "raw":
      return text(l.units)
    case "missing":
      return undefined
  }
}

const decide = (line: string | undefined, i: number): Prepared =>
  line === undefined
    ? { _tag: "Done", result: { line: i, raw: undefined, text: undefined, messageId: undefined, event: undefined, outcome: { outcome: "dropped", reason: "none" } } }
    : prepareLine(line, i, consent.resolve, mapping, mapping.preset.datatypes)

describe("WindowPack", () => {
  it.prop(
    "law: decisions read back equal those packed, without text or parsed event where the text gives them back; every text reads back as it was",
    // Pieces small enough that texts span several, and some are alone in theirs (over a piece).
    [Schema.Array(Line).pipe(Schema.maxItems(60)), Schema.Literal(16, 200, 256 * 1024), Schema.Literal(1, 3, 512)],
    ([lines, text, decisions]) => {
      const prepared = lines.map((l, i) => decide(lineOf(l, i), i + 1))
      const pack = WindowPackBuilder.from(prepared, { text, decisions }).finish()
      const back = pack.decisions()
      expect(back.length).toBe(prepared.length)
      prepared.forEach((p, i) => {
        if (p._tag === "Send") {
          expect(back[i]).toStrictEqual({ ...p, raw: undefined, text: undefined })
          expect(pack.text(i)).toBe(p.text)
          // What a result reads back: the event as parsed.
          expect(JSON.parse(pack.text(i)!)).toStrictEqual(p.raw)
        } else if (typeof p.result.raw === "object" && p.result.raw !== null && p.result.text !== undefined) {
          expect(back[i]).toStrictEqual({ ...p, result: { ...p.result, raw: undefined, text: undefined } })
          expect(pack.text(i)).toBe(p.result.text)
        } else {
          expect(back[i]).toStrictEqual(p)
          expect(pack.text(i)).toBeUndefined()
        }
      })
      // Each update's contact, as its job sends it, and who it is.
      expect(contactsOf(pack)).toStrictEqual(expectedContacts(prepared))
      // Read back twice (the jobs' bodies, then the outcomes): the same again.
      expect(pack.decisions()).toStrictEqual(back)
      // Texts read back out of order, across pieces.
      for (let i = prepared.length - 1; i >= 0; i -= 2) {
        const p = prepared[i]!
        expect(pack.text(i)).toBe(p._tag === "Send" ? p.text : typeof p.result.raw === "object" && p.result.raw !== null ? p.result.text : undefined)
      }
      // A gathering sent event by event after all: the decisions with their texts.
      pack.unpacked().forEach((u, i) => {
        const p = prepared[i]!
        if (p._tag === "Send") expect(u).toStrictEqual({ ...p, raw: undefined })
        else expect(u).toStrictEqual(typeof p.result.raw === "object" && p.result.raw !== null && p.result.text !== undefined ? { ...p, result: { ...p.result, raw: undefined } } : p)
      })
    },
    { fastCheck: { numRuns: 200 } }
  )

  it.prop(
    "law: a pack spilled to its file reads back the same decisions (as often as asked) and texts, and the same once kept in memory again",
    [Schema.Array(Line).pipe(Schema.maxItems(40)), Schema.Literal(16, 200, 256 * 1024), Schema.Literal(1, 3, 512), Schema.Boolean],
    ([lines, text, decisions, textsFirst]) => {
      const prepared = lines.map((l, i) => decide(lineOf(l, i), i + 1))
      const inMemory = WindowPackBuilder.from(prepared, { text, decisions }).finish()
      const pack = WindowPackBuilder.from(prepared, { text, decisions }).finish()
      const bytes = pack.packedBytes
      expect(pack.spill()).toBe(true)
      expect(pack.spilled).toBe(true)
      expect(pack.packedBytes).toBe(bytes)
      expect(pack.decisions()).toStrictEqual(inMemory.decisions())
      expect(pack.decisions()).toStrictEqual(inMemory.decisions())
      expect(contactsOf(pack)).toStrictEqual(contactsOf(inMemory))
      expect(contactsOf(pack)).toStrictEqual(expectedContacts(prepared))
      expect(pack.spilled).toBe(true)
      // A text read back keeps the pack in memory again (a result's text is asked for once its window ended).
      if (textsFirst) for (let i = prepared.length - 1; i >= 0; i--) expect(pack.text(i)).toBe(inMemory.text(i))
      else pack.keep()
      expect(pack.spilled).toBe(prepared.length === 0 && textsFirst)
      pack.keep()
      expect(pack.spilled).toBe(false)
      expect(pack.decisions()).toStrictEqual(inMemory.decisions())
      for (let i = 0; i < prepared.length; i++) expect(pack.text(i)).toBe(inMemory.text(i))
      expect(pack.unpacked()).toStrictEqual(inMemory.unpacked())
      expect(contactsOf(pack)).toStrictEqual(contactsOf(inMemory))
    },
    { fastCheck: { numRuns: 200 } }
  )

  it("a pack that cannot be written to its file stays in memory", () => {
    const prepared = [decide(JSON.stringify({ type: "track", event: "Signed Up", context: { traits: { email: "a@example.com" } } }), 1)]
    const pack = WindowPackBuilder.from(prepared).finish()
    expect(pack.spill("/nonexistent/signal-mailjet")).toBe(false)
    expect(pack.spilled).toBe(false)
    expect(pack.text(0)).toBe((prepared[0] as Extract<Prepared, { _tag: "Send" }>).text)
  })

  it("a window of 5,000 bench-sized events packs to a small fraction of its texts", () => {
    const prepared = Array.from({ length: 5000 }, (_, i) =>
      decide(
        JSON.stringify({
          type: "track",
          event: "Signed Up",
          messageId: `${i.toString(16).padStart(8, "0")}-8a51-4c4b-9a0e-000000000000`,
          context: { traits: { email: `c${i}@example.com`, first_name: "Jane", last_name: `Doe ${i}` }, consent: { marketing: i % 2 === 0 } }
        }),
        i + 1
      ))
    const pack = WindowPackBuilder.from(prepared).finish()
    const texts = prepared.reduce((n, p) => n + (p._tag === "Send" ? p.text!.length : 0), 0)
    // The contacts are kept as their jobs send them, not deflated: read once, into a job's body,
    // and in the pack's file with the rest while the window waits.
    const { entries } = pack.contacts()
    const contacts = entries.pieces.reduce((n, b) => n + b.length, entries.at.byteLength)
    expect(contacts).toBeLessThan(texts)
    expect(pack.packedBytes - contacts).toBeLessThan(texts / 5)
    expect(pack.text(4999)).toBe((prepared[4999] as Extract<Prepared, { _tag: "Send" }>).text)
  })
})
