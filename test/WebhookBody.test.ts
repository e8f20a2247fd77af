/**
 * Mailjet's callback bodies read one event at a time (issue 29): loose types are read, what cannot
 * be acted on is skipped and counted, and only text that is not JSON is refused. The laws are
 * checked against a model written here from Mailjet's recorded fields, not from src/. Also the
 * endpoint's credentials: strict Basic auth, and an empty password as a configuration error.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Option, Redacted, Schema } from "effect"
import { formatConfigError } from "../src/internal/config.js"
import { authorized, webhookCredentials } from "../src/Kafka/Webhook.js"
import { readCallback } from "../src/Kafka/WebhookBody.js"
import { runBin } from "./support/bin.js"

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

/**
 * A field as Mailjet may send it: one of `values` (`undefined` leaves the field out of the JSON),
 * now and then any string, number or boolean. Weighted so that the cases the law is about (a
 * `"false"` hard bounce, another list's unsubscribe) come up in every run.
 */
const field = (...values: ReadonlyArray<unknown>) =>
  Schema.Unknown.annotations({
    arbitrary: () => (fc) =>
      fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(...values) },
        { weight: 1, arbitrary: fc.oneof(fc.string(), fc.double(), fc.integer(), fc.boolean(), fc.constantFrom(null, "", undefined)) }
      )
  })

const Loose = field(undefined, null, "", " ", "0", "1", 0, 1, true, false)

const Event = Schema.Struct({
  event: field("unsub", "spam", "bounce", "blocked", "open", "click", "sent", "Unsub", 1, true, null, undefined),
  email: field(...EMAILS.map(([raw]) => raw), 5, true, null, undefined),
  time: field(
    1764400000,
    "1764400000",
    " 1764400001 ",
    "1764400002.5",
    1764400003.25,
    0,
    -5,
    "-5",
    "1e9",
    "soon",
    "",
    1e300,
    "1764400000000000",
    true,
    null,
    undefined
  ),
  hard_bounce: field(true, false, "true", "false", "TRUE", " False ", "1", "0", "", "yes", 0, 1, 2, null, undefined),
  mj_list_id: field(LIST, 8, 0, -7, `${LIST}`, " 7 ", "8", "", "7.0", 7.5, "list", true, null, undefined),
  // The rest of Mailjet's fields, read by nothing: any value must leave the reading unchanged.
  MessageID: Loose,
  Message_GUID: Loose,
  mj_campaign_id: Loose,
  mj_contact_id: Loose,
  customcampaign: Loose,
  CustomID: Loose,
  Payload: Loose,
  blocked: Loose,
  error_related_to: Loose,
  error: Loose,
  source: Loose,
  ip: Loose,
  agent: Loose
})
/** What a batch may hold besides events: values, and arrays of them. */
const Junk = Schema.Union(Loose, Schema.Array(Loose))
const Body = Schema.Union(Schema.Array(Schema.Union(Event, Junk)), Event, Junk)

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
    "law: every unsub of this list (or of no readable list), spam, hard bounce and blocked with a usable email is exactly one " +
      "suppression, with its normalised email, in body order; nothing else is; the rest is counted as skipped; never a throw",
    [Body],
    ([body]) => {
      // A top-level `undefined` has no JSON: it stands for `null` there.
      const text = JSON.stringify(body) ?? "null"
      const expected = model(JSON.parse(text))
      const got = Either.getOrThrow(read(text))
      expect(got.learnt.map(({ at, email, event }) => ({ email, event, at }))).toStrictEqual(expected.suppressions)
      expect(got.skipped).toHaveLength(expected.skipped)
      for (const l of got.learnt) expect(l.reason.endsWith(` at ${l.at}`)).toBe(true)
    },
    { fastCheck: { numRuns: 2000 } }
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

describe("the endpoint's credentials", () => {
  const credentials = { user: "mailjet", password: Redacted.make("pa$s:word"), listId: LIST }
  const token = Buffer.from("mailjet:pa$s:word").toString("base64")

  it("Basic auth is decoded strictly: junk in or around valid base64 is refused", () => {
    expect(authorized(`Basic ${token}`, credentials)).toBe(true)
    expect(authorized(`basic  ${token} `, credentials)).toBe(true)
    // RFC 4648 lets the padding be left out.
    expect(token.endsWith("=")).toBe(true)
    expect(authorized(`Basic ${token.replace(/=+$/, "")}`, credentials)).toBe(true)
    for (const junk of [`!${token}`, `${token}!!`, `*${token.slice(0, 4)}*${token.slice(4)}`, `${token.slice(0, 8)} ${token.slice(8)}`, `${token}=`]) {
      // Node's own decoder would accept each: it skips what is not base64.
      expect(Buffer.from(junk, "base64").toString("utf8")).toBe("mailjet:pa$s:word")
      expect(authorized(`Basic ${junk}`, credentials), JSON.stringify(junk)).toBe(false)
    }
    expect(authorized(undefined, credentials)).toBe(false)
    expect(authorized(`Bearer ${token}`, credentials)).toBe(false)
    expect(authorized(`Basic ${Buffer.from("mailjet:pa$s:wore").toString("base64")}`, credentials)).toBe(false)
  })

  const load = (vars: Record<string, string>) =>
    Effect.runSync(Effect.either(ConfigProvider.fromMap(new Map(Object.entries({ MAILJET_LIST_ID: "7", ...vars }))).load(webhookCredentials)))

  it("an empty MAILJET_WEBHOOK_PASSWORD is a configuration error naming the fix; unset turns the endpoint off", () => {
    for (const empty of ["", "  "]) {
      const loaded = load({ MAILJET_WEBHOOK_PASSWORD: empty })
      expect(Either.isLeft(loaded)).toBe(true)
      if (Either.isLeft(loaded)) {
        expect(formatConfigError(loaded.left)).toStrictEqual([
          "MAILJET_WEBHOOK_PASSWORD: is set but empty: unset it to turn /mailjet/events off, or set the password of the callback URL"
        ])
      }
    }
    expect(Either.getOrThrow(load({}))).toStrictEqual(Option.none())
    const on = Option.getOrThrow(Either.getOrThrow(load({ MAILJET_WEBHOOK_PASSWORD: "hook" })))
    expect([on.user, Redacted.value(on.password), on.listId]).toStrictEqual(["mailjet", "hook", 7])
  })

  it("serve with an empty MAILJET_WEBHOOK_PASSWORD exits 2 with that line, before it listens or reaches Kafka", async () => {
    const r = await runBin(["serve"], {
      // Nothing listens there: the configuration is refused before any connection.
      KAFKA_BROKERS: "127.0.0.1:9",
      SIGNAL_INTEGRATION_ID: "empty-password",
      MAILJET_API_KEY: "key",
      MAILJET_SECRET_KEY: "secret",
      MAILJET_LIST_ID: "1",
      MAILJET_WEBHOOK_PASSWORD: ""
    })
    expect(r.code).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.stderr).toMatch(/^signal-mailjet: configuration error:$/m)
    expect(r.stderr).toContain(
      "  MAILJET_WEBHOOK_PASSWORD: is set but empty: unset it to turn /mailjet/events off, or set the password of the callback URL\n"
    )
  })
})
