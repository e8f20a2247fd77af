/**
 * Mailjet's callback bodies read one event at a time (issue 29): loose types are read, what cannot
 * be acted on is skipped and counted, and only text that is not JSON is refused. The laws are
 * checked against a model written here from Mailjet's recorded fields, not from src/.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { readCallback } from "../src/Kafka/WebhookBody.js"

const LIST = 7
const NOW = new Date("2026-12-05T12:00:00Z")
const read = (body: unknown) => readCallback(typeof body === "string" ? body : JSON.stringify(body), { listId: LIST, now: NOW })

// ---------------------------------------------------------------------------------------------
// The model

/** Addresses as Mailjet may spell them, with what each is as a contact (undefined: none). */
const EMAILS: ReadonlyArray<readonly [string, string | undefined]> = [
  ["a@example.com", "a@example.com"],
  [" B@Example.COM ", "b@example.com"],
  ["C@EXAMPLE.com", "c@example.com"],
  ["d.e+tag@sub.example.org", "d.e+tag@sub.example.org"],
  ["no-at", undefined],
  ["", undefined],
  [" ", undefined],
  ["z\u200b@example.com", undefined], // a zero-width space: a second contact that looks like z@
  ["@example.com", undefined],
  ["a@b", undefined],
  ["x@example..com", undefined]
]
const CONTACT = new Map(EMAILS)

/** Anything Mailjet's loose JSON may hold in a field. */
const Loose = Schema.Union(Schema.String, Schema.Number, Schema.Boolean, Schema.Null, Schema.Literal("", " ", "0", "1"))

const Event = Schema.Struct({
  event: Schema.optional(Schema.Union(
    Schema.Literal("unsub", "spam", "bounce", "blocked", "open", "click", "sent", "Unsub"),
    Schema.Number,
    Schema.Boolean,
    Schema.Null
  )),
  email: Schema.optional(Schema.Union(Schema.Literal(...EMAILS.map(([raw]) => raw)), Schema.Number, Schema.Boolean, Schema.Null)),
  time: Schema.optional(Schema.Union(
    Schema.Int,
    Schema.Number,
    Schema.Literal("1764400000", " 1764400001 ", "1764400002.5", "-5", "1e9", "soon", "", "1764400000000000"),
    Schema.Boolean,
    Schema.Null
  )),
  hard_bounce: Schema.optional(Schema.Union(
    Schema.Boolean,
    Schema.Literal("true", "false", "TRUE", " False ", "1", "0", "", "yes", 0, 1, 2),
    Schema.Null,
    Schema.String
  )),
  mj_list_id: Schema.optional(Schema.Union(Schema.Literal(LIST, 8, 0, -7, `${LIST}`, " 7 ", "8", "", "7.0", "list"), Loose)),
  // The rest of Mailjet's fields, read by nothing: any value must leave the reading unchanged.
  MessageID: Schema.optional(Loose),
  Message_GUID: Schema.optional(Loose),
  mj_campaign_id: Schema.optional(Loose),
  mj_contact_id: Schema.optional(Loose),
  customcampaign: Schema.optional(Loose),
  CustomID: Schema.optional(Loose),
  Payload: Schema.optional(Loose),
  blocked: Schema.optional(Loose),
  error_related_to: Schema.optional(Loose),
  error: Schema.optional(Loose),
  source: Schema.optional(Loose),
  ip: Schema.optional(Loose),
  agent: Schema.optional(Loose)
})
const Item = Schema.Union(Event, Event, Loose, Schema.Array(Loose))
const Body = Schema.Union(Event, Schema.Array(Item), Loose)

/** A decimal number as Mailjet writes one, as a number or a string of digits. */
const decimal = (v: unknown, fraction: boolean): number | undefined => {
  if (typeof v === "number") return v
  if (typeof v !== "string") return undefined
  const digits = fraction ? /^\s*[0-9]+(\.[0-9]+)?\s*$/ : /^\s*[0-9]+\s*$/
  return digits.test(v) ? Number(v) : undefined
}

interface Expected {
  readonly suppressions: Array<{ email: string; event: string; at: string }>
  skipped: number
}

/** What the README promises for a body as it arrives on the wire. */
const model = (wire: unknown): Expected => {
  const out: Expected = { suppressions: [], skipped: 0 }
  for (const item of Array.isArray(wire) ? wire : [wire]) {
    const e = item as Record<string, unknown>
    if (item === null || typeof item !== "object" || Array.isArray(item) || typeof e["event"] !== "string") {
      out.skipped++
      continue
    }
    const hb = e["hard_bounce"]
    const hbText = hb === undefined || hb === null ? "" : String(hb).trim().toLowerCase()
    const hbKnown = typeof hb !== "object" || hb === null
    const listRaw = decimal(e["mj_list_id"], false)
    const listKnown = listRaw !== undefined && Number.isSafeInteger(listRaw) && listRaw > 0
    let suppressing: boolean
    if (e["event"] === "spam" || e["event"] === "blocked") suppressing = true
    else if (e["event"] === "unsub") suppressing = !listKnown || listRaw === LIST
    else if (e["event"] === "bounce") {
      if (hbKnown && (hbText === "true" || hbText === "1")) suppressing = true
      else if (hbKnown && (hbText === "" || hbText === "false" || hbText === "0")) suppressing = false
      else {
        out.skipped++
        continue
      }
    } else suppressing = false
    if (!suppressing) continue
    const email = typeof e["email"] === "string" ? CONTACT.get(e["email"]) : undefined
    if (email === undefined) {
      out.skipped++
      continue
    }
    const seconds = decimal(e["time"], true)
    const ms = seconds === undefined ? Number.NaN : seconds * 1000
    const when = Number.isFinite(ms) && ms >= 0 && ms <= 8.64e15 ? new Date(Math.floor(ms)) : NOW
    out.suppressions.push({ email, event: e["event"] as string, at: when.toISOString().replace(".000Z", "Z") })
  }
  return out
}

describe("webhook bodies, one event at a time", () => {
  it.prop(
    "law: every unsub of this list (or of no readable list), spam, hard bounce and blocked with a usable email is exactly one suppression, with its normalised email, in body order; nothing else is; the rest is counted as skipped; never a throw",
    [Body],
    ([body]) => {
      const text = JSON.stringify(body)
      const expected = model(JSON.parse(text))
      const got = Either.getOrThrow(read(text))
      expect(got.learnt.map(({ at, email, event }) => ({ email, event, at }))).toStrictEqual(expected.suppressions)
      expect(got.skipped).toHaveLength(expected.skipped)
      for (const l of got.learnt) expect(l.reason.endsWith(` at ${l.at}`)).toBe(true)
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it.prop(
    "law: only text that is not JSON is refused, and the refusal never echoes it",
    [Schema.String],
    ([raw]) => {
      // Never JSON, whatever follows: one closing brace too many.
      const text = `{"email":"secret@example.com"}}${raw}`
      let json = true
      try {
        JSON.parse(raw)
      } catch {
        json = false
      }
      expect(Either.isLeft(read(raw))).toBe(!json)
      const refused = read(text)
      expect(Either.isLeft(refused)).toBe(true)
      if (Either.isLeft(refused)) expect(refused.left).not.toContain("secret")
    }
  )

  it("the batches the issue found refused whole: the valid unsubscribe beside each is kept, the rest read or skipped", () => {
    const unsub = { event: "unsub", time: 1764400000, email: "keep@example.com", mj_list_id: LIST }
    const kept = { email: "keep@example.com", event: "unsub", at: "2025-11-29T07:06:40Z" }
    const cases: ReadonlyArray<readonly [string, unknown, ReadonlyArray<typeof kept>, ReadonlyArray<string>]> = [
      ["a soft bounce spelt \"false\"", { event: "bounce", time: 1764400000, email: "s@example.com", hard_bounce: "false", blocked: "" }, [], []],
      ["time as a string, on an open", { event: "open", time: "1700000000", email: "o@example.com" }, [], []],
      ["mj_list_id null: read as this list", { event: "unsub", time: 1764400000, email: "n@example.com", mj_list_id: null }, [
        { ...kept, email: "n@example.com" }
      ], []],
      ["a zero-width character in an email", { event: "spam", time: 1764400000, email: "z\u200b@example.com" }, [], ["no_usable_email"]],
      ["an unsub without an email", { event: "unsub", time: 1764400000, mj_list_id: LIST }, [], ["no_usable_email"]],
      ["a hard bounce spelt \"true\", time a string", { event: "bounce", time: "1764400001", email: "h@example.com", hard_bounce: "true" }, [
        { email: "h@example.com", event: "bounce", at: "2025-11-29T07:06:41Z" }
      ], []],
      ["a spam without a time: dated when received", { event: "spam", time: "", email: "t@example.com" }, [
        { email: "t@example.com", event: "spam", at: "2026-12-05T12:00:00Z" }
      ], []],
      ["an unsub from another list", { event: "unsub", time: 1764400000, email: "o@example.com", mj_list_id: "8" }, [], []],
      ["not an event", "oops", [], ["not_an_event"]]
    ]
    for (const [what, other, more, skipped] of cases) {
      const got = Either.getOrThrow(read([other, unsub]))
      expect(got.learnt.map(({ at, email, event }) => ({ email, event, at })), what).toStrictEqual([...more, kept])
      expect(got.skipped, what).toStrictEqual(skipped)
    }
    // JSON that holds no event is read, with nothing to store.
    for (const [body, skipped] of [["null", 1], ["{}", 1], ["[]", 0], ["[1,[]]", 2], ["\"unsub\"", 1]] as const) {
      const got = Either.getOrThrow(read(body))
      expect([got.learnt.length, got.skipped.length], body).toStrictEqual([0, skipped])
    }
  })
})
