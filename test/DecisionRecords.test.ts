/**
 * A bulk window's decisions as records (internal/decisionRecords.ts): the usual update written
 * field by field, anything else by V8's serializer.
 * Law: the records read back equal, key for key, the decisions written, in order, for any text
 * (lone surrogates included), any line, any action, with or without a timestamp or the time of
 * the event, and with anything added on the way (a note, a replay, a demotion, an erasure, a
 * partial update, a key unknown to the records) or a result in place of an update; across pieces,
 * the writer reused (a piece's event and mapped names are written once, then referred to, so a
 * reference must never reach into another piece); an update written as decided (its text, parsed event and whole body) reads
 * back as a pack gives it: without them, its body its action alone.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import * as V8 from "node:v8"
import type { PackedSend, Prepared } from "../src/Delivery/Prepare.js"
import type { Packed } from "../src/Delivery/WindowPack.js"
import { readRecords, RecordsWriter } from "../src/internal/decisionRecords.js"

/** Any UTF-16 string: about one unit in thirty is a surrogate, often alone. */
const Text = Schema.Array(Schema.Int.pipe(Schema.between(0, 0xffff))).pipe(Schema.maxItems(30))
const text = (units: ReadonlyArray<number>) => String.fromCharCode(...units)
/** Mostly the bench's kind of text, ASCII; sometimes any, or longer than the writer's first buffer. */
const Field = Schema.Union(Schema.Literal("x".repeat(3000), "Signed Up", "bulk.1@bench.example.com", "2026-11-26T00:00:01.000Z", "00000001-8a51-4c4b-9a0e-000000001eef", ""), Text)
const field = (f: typeof Field.Type) => (typeof f === "string" ? f : text(f))
const Action = Schema.Literal("addforce", "addnoforce", "unsub", "remove")

const Decision = Schema.Struct({
  line: Schema.Union(Schema.Int.pipe(Schema.between(0, 2_000_000)), Schema.Literal(0xffffffff, 0x100000000, -1, 1.5)),
  messageId: Schema.UndefinedOr(Field),
  event: Field,
  mapped: Field,
  email: Field,
  action: Action,
  sent: Action,
  explicit: Schema.Boolean,
  eventAt: Schema.UndefinedOr(Schema.Union(Schema.Int, Schema.Literal(Number.NaN, -0, 1.5))),
  timestamp: Schema.Union(Schema.Literal("none"), Field),
  extra: Schema.Literal("none", "other", "note", "replay", "demoted", "erase", "partial", "result"),
  /** As decided (its text, parsed event and whole body), or as a pack gives it back. */
  decided: Schema.Boolean
})

/** The decision written, and what must be read back. */
const decision = (d: typeof Decision.Type): readonly [Prepared | Packed, Packed] => {
  const p = packed(d)
  if (!d.decided || p._tag !== "Send") return [p, p]
  const text = JSON.stringify({ email: p.email })
  return [{ ...p, raw: JSON.parse(text), text, body: { Email: p.email, Name: "Jane", Action: p.body.Action, Properties: { firstname: "Jane" } } }, p]
}

const packed = (d: typeof Decision.Type): Packed => {
  if (d.extra === "result") {
    return { _tag: "Done", result: { line: d.line, raw: undefined, text: undefined, messageId: undefined, event: field(d.event), outcome: { outcome: "dropped", reason: field(d.mapped) } } }
  }
  const p: PackedSend = {
    _tag: "Send",
    line: d.line,
    raw: undefined,
    text: undefined,
    messageId: d.messageId === undefined ? undefined : field(d.messageId),
    event: field(d.event),
    mapped: field(d.mapped),
    email: field(d.email),
    action: d.action,
    explicit: d.explicit,
    eventAt: d.eventAt,
    ...(d.timestamp === "none" ? {} : { timestamp: field(d.timestamp) }),
    body: { Action: d.sent },
    partial: d.extra === "partial" ? { properties: ["age"], error: "InvalidContact", reason: "not a number" } : undefined
  }
  switch (d.extra) {
    case "note":
      return { ...p, note: field(d.email) }
    case "replay":
      return { ...p, replay: "properties" }
    case "demoted":
      return { ...p, demoted: "unsubscribed on Mailjet" }
    case "erase":
      return { ...p, erase: true }
    case "other":
      // A key no record has room for.
      return { ...p, via: field(d.event) } as PackedSend
    default:
      return p
  }
}

/** Writes the decisions in pieces of `piece`, one writer for all; reads each piece back. */
const roundTrip = (decisions: ReadonlyArray<Prepared | Packed>, piece: number): Array<Packed> => {
  const writer = new RecordsWriter()
  const pieces: Array<Buffer> = []
  for (let i = 0; i < decisions.length; i += piece) {
    for (const d of decisions.slice(i, i + piece)) writer.add(d)
    // Copied, as the pack deflates it: the writer's buffer is the next piece's.
    pieces.push(Buffer.from(writer.take()))
  }
  return pieces.flatMap((b, k) => [...readRecords(b, Math.min(piece, decisions.length - k * piece))])
}

describe("decisionRecords", () => {
  it.prop(
    "law: the records read back equal the decisions written, key for key, in order, across pieces",
    [Schema.Array(Decision).pipe(Schema.maxItems(40)), Schema.Literal(1, 3, 512)],
    ([ds, piece]) => {
      const decisions = ds.map(decision)
      expect(roundTrip(decisions.map(([written]) => written), piece)).toStrictEqual(decisions.map(([, back]) => back))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it("a piece's event and mapped names are written once and referred to after: several names, in any order, across pieces", () => {
    const names = [["Signed Up", "Signed Up"], ["Order Completed", "Ordered"], ["Signed Up", "Ordered"], ["Identified", "Order Completed"], ["Ordered", "Identified"]]
    const decisions = Array.from({ length: 23 }, (_, i) =>
      packed({
        line: i + 1,
        messageId: undefined,
        event: names[i % names.length]![0]!,
        mapped: names[(i * 3) % names.length]![1]!,
        email: `c${i}@example.com`,
        action: "addforce",
        sent: "addforce",
        explicit: false,
        eventAt: undefined,
        timestamp: "none",
        extra: "none",
        decided: false
      }))
    for (const piece of [4, 7, 512]) expect(roundTrip(decisions, piece)).toStrictEqual(decisions)
    // Referred to, not written again: 23 records of five names take less room than each written out.
    const writer = new RecordsWriter()
    for (const d of decisions) writer.add(d)
    const once = writer.take().length
    const alone = decisions.reduce((n, d) => {
      writer.add(d)
      return n + writer.take().length
    }, 0)
    expect(once).toBeLessThan(alone - 23 * 8)
  })

  it("the usual update is a record, not V8's serialization: under half its bytes", () => {
    const usual = packed({
      line: 12,
      messageId: "00000001-8a51-4c4b-9a0e-000000001eef",
      event: "Signed Up",
      mapped: "Signed Up",
      email: "bulk.1@bench.example.com",
      action: "addforce",
      sent: "addforce",
      explicit: false,
      eventAt: 1_795_651_201_000,
      timestamp: "2026-11-26T00:00:01.000Z",
      extra: "none",
      decided: false
    })
    const writer = new RecordsWriter()
    writer.add(usual)
    const record = Buffer.from(writer.take())
    expect(record.length).toBeLessThan(V8.serialize(usual).length / 2)
    expect([...readRecords(record, 1)]).toStrictEqual([usual])
  })
})
