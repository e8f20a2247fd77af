/**
 * Schemas whose arbitraries generate Signal events for the property tests of the mapping, consent
 * and datatype laws (Signal's event contract, README). Each generated case carries what the law needs to predict
 * the outcome (the event kind, where the email sits, the consent form); the oracles below restate
 * the resolution rules of the doc independently of src/.
 */
import type { FastCheck } from "effect"
import { Schema } from "effect"
import type { LazyArbitrary } from "effect/Arbitrary"

type FC = typeof FastCheck

/** A String schema whose values come from a hand-written generator. */
const generated = (arb: (fc: FC) => FastCheck.Arbitrary<string>) =>
  Schema.String.annotations({ arbitrary: (): LazyArbitrary<string> => arb })

// ---------------------------------------------------------------------------------------------
// Event names

export const MAPPED_EVENTS = ["Signed Up", "Identified", "Order Completed", "Subscribed", "Unsubscribed"] as const
export type MappedEvent = typeof MAPPED_EVENTS[number]

/** Separators that must not matter: anything that is not a letter or a digit. */
const SEPARATORS = ["", " ", "_", "-", ".", "  ", " - ", "/", ":", "\t", "__"] as const

/** `name` with every letter in a random case, words joined by random separators, random padding. */
export const spellingOf = (name: string) => (fc: FC): FastCheck.Arbitrary<string> => {
  const words = name.split(" ")
  const letters = name.replace(/ /g, "").length
  return fc.record({
    upper: fc.array(fc.boolean(), { minLength: letters, maxLength: letters }),
    seps: fc.array(fc.constantFrom(...SEPARATORS), { minLength: words.length - 1, maxLength: words.length - 1 }),
    pre: fc.constantFrom("", " ", "_", "*"),
    post: fc.constantFrom("", " ", "!", "-")
  }).map(({ post, pre, seps, upper }) => {
    let i = 0
    const cased = words.map((w) =>
      [...w].map((c) => {
        const up = upper[i++] === true
        return up ? c.toUpperCase() : c.toLowerCase()
      }).join("")
    )
    return pre + cased.map((w, k) => k === 0 ? w : seps[k - 1] + w).join("") + post
  })
}

export const Spelling = (name: string) => generated(spellingOf(name))

const trackOf = <K extends Exclude<MappedEvent, "Identified">>(kind: K) =>
  Schema.Struct({ kind: Schema.Literal(kind), type: Schema.Literal("track"), event: Spelling(kind) })

/** A mapped event as the wire spells it: `track` with a name variant, or an `identify` call. */
export const MappedEventSpelling = Schema.Union(
  trackOf("Signed Up"),
  trackOf("Order Completed"),
  trackOf("Subscribed"),
  trackOf("Unsubscribed"),
  Schema.Struct({ kind: Schema.Literal("Identified"), type: Schema.Literal("track"), event: Spelling("Identified") }),
  // an identify call is `Identified` whatever else it carries as `event`
  Schema.Struct({
    kind: Schema.Literal("Identified"),
    type: Schema.Literal("identify"),
    event: Schema.optionalWith(Schema.String, { exact: true })
  })
)
export type MappedEventSpelling = typeof MappedEventSpelling.Type

/** Independent of src: what `canonicalEventName` must give for ASCII names. */
export const asciiCanonical = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]/g, "")
const MAPPED_CANONICAL = new Set(MAPPED_EVENTS.map(asciiCanonical))

/** Track names the Default preset does not map (realistic ones, and anything else). */
export const UnmappedTrackName = Schema.Union(
  Schema.Literal("Product Viewed", "Page Viewed", "Signed In", "Sign Up", "Order Refunded", "Checkout Started", ""),
  Schema.String
).pipe(
  Schema.filter((s) => !MAPPED_CANONICAL.has(s.toLowerCase().replace(/[^\p{L}\p{N}]/gu, "")))
)

// ---------------------------------------------------------------------------------------------
// Emails

const LOCAL_ATOM = /^[A-Za-z0-9_+%-]{1,8}$/
const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?$/
const TLD = /^[A-Za-z]{2,6}$/
const PADDING = ["", " ", "  ", "\t", "\n", " \r\n"] as const

/** A valid address in any case, possibly padded with whitespace, as a web form might send it. */
export const RawValidEmail = generated((fc) =>
  fc.oneof(
    { weight: 9, arbitrary: fc.tuple(
      fc.array(fc.stringMatching(LOCAL_ATOM), { minLength: 1, maxLength: 3 }),
      fc.array(fc.stringMatching(LABEL), { minLength: 1, maxLength: 3 }),
      fc.stringMatching(TLD),
      fc.constantFrom(...PADDING),
      fc.constantFrom(...PADDING)
    ).map(([local, labels, tld, pre, post]) => `${pre}${local.join(".")}@${labels.join(".")}.${tld}${post}`) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "Jane.Doe@Example.com",
        "  MAX.MUSTERMANN@EXAMPLE.DE ",
        "Jürgen@Bücher.DE",
        "o'brien+news@mail.example.co.uk",
        "a@b.io"
      )
    }
  )
)

/** Non-empty (after trimming) strings that are not addresses. */
export const InvalidEmail = generated((fc) =>
  fc.oneof(
    fc.constantFrom(
      "jane",
      "jane@",
      "@example.com",
      "jane@example",
      "jane doe@example.com",
      "jane@@example.com",
      "jane..doe@example.com",
      "jane@example..com",
      "<jane@example.com>",
      "Jane Doe <jane@example.com>",
      "jane@example.com.",
      "jane@exa mple.com",
      "jane@[127.0.0.1]",
      "null",
      "undefined",
      `${"x".repeat(65)}@example.com`,
      `jane@${"d".repeat(250)}.com`
    ),
    fc.string({ minLength: 1 }).filter((s) => !s.includes("@") && s.trim() !== "")
  )
)

/**
 * A valid address with a control (Cc) or format (Cf) character inside it, where trimming cannot
 * remove it: NUL (as `\u0000` in JSON decodes), zero-width space and joiners, a BOM, bidi overrides.
 */
export const EmailWithInvisible = generated((fc) =>
  fc.tuple(
    fc.stringMatching(/^[a-z0-9]{1,8}@[a-z0-9]{1,8}\.[a-z]{2,4}$/),
    fc.constantFrom("\u0000", "\u0001", "\u001f", "\u007f", "\u0085", "\u00ad", "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202e", "\u061c"),
    fc.nat()
  ).map(([email, c, i]) => {
    const at = 1 + (i % (email.length - 1))
    return `${email.slice(0, at)}${c}${email.slice(at)}`
  })
)

/** Something in an email slot that is not a non-empty string: it must be skipped. */
export const NoEmailValue = Schema.Union(Schema.Literal("", " ", "\t\n", 0, false, true, 42), Schema.Null)

// ---------------------------------------------------------------------------------------------
// Consent

export const Category = Schema.Literal("marketing", "analytics", "functional", "advertising")
export type Category = typeof Category.Type

const Flags = {
  marketing: Schema.optionalWith(Schema.Boolean, { exact: true }),
  analytics: Schema.optionalWith(Schema.Boolean, { exact: true }),
  functional: Schema.optionalWith(Schema.Boolean, { exact: true }),
  advertising: Schema.optionalWith(Schema.Boolean, { exact: true })
}

/** `{ marketing: true, analytics: false, … }`; any category may be missing. */
export const ConsentFlags = Schema.Struct(Flags)
/** `{ categories: ["marketing", …] }`: the granted names (mobile SDKs). */
export const ConsentList = Schema.Struct({ categories: Schema.Array(Category) })
/** `{ categories: { marketing: true, … } }` (mobile SDKs). */
export const ConsentMap = Schema.Struct({ categories: Schema.Struct(Flags) })

/** Every form `context.consent` takes; `undefined` is an event without `context.consent`. */
export const ConsentForm = Schema.UndefinedOr(Schema.Union(ConsentFlags, ConsentList, ConsentMap))
export type ConsentForm = typeof ConsentForm.Type

export type ConsentState = "Granted" | "Withdrawn" | "Unknown"

const fromFlag = (v: boolean | undefined): ConsentState =>
  v === undefined ? "Unknown" : v ? "Granted" : "Withdrawn"

/** The doc's rule, per form. A list is the whole set of grants: a category missing from it is withdrawn. */
export const expectedConsent = (form: ConsentForm, category: Category): ConsentState => {
  if (form === undefined) return "Unknown"
  if ("categories" in form) {
    const categories = form.categories
    return Array.isArray(categories)
      ? (categories as ReadonlyArray<string>).includes(category) ? "Granted" : "Withdrawn"
      : fromFlag((categories as typeof ConsentFlags.Type)[category])
  }
  return fromFlag(form[category])
}

// ---------------------------------------------------------------------------------------------
// Names and property values

/** Names as they arrive: real ones (some padded), empty, blank, null. */
export const NameValue = Schema.Union(
  generated((fc) => fc.constantFrom("Jane", "Doe", " Max ", "O'Brien", "Zoë", "Jean-Luc", "李", "van der Berg")),
  Schema.Literal("", "   "),
  Schema.Null
)
export type NameValue = typeof NameValue.Type

/** The name traits; every key may be absent. */
export const NameTraits = Schema.Struct({
  first_name: Schema.optionalWith(NameValue, { exact: true }),
  firstName: Schema.optionalWith(NameValue, { exact: true }),
  last_name: Schema.optionalWith(NameValue, { exact: true }),
  lastName: Schema.optionalWith(NameValue, { exact: true }),
  name: Schema.optionalWith(NameValue, { exact: true })
})
export type NameTraits = typeof NameTraits.Type

/** Property values, `false`, `0` and the no-values `""` and `null` included on purpose. */
export const PropValue = Schema.Union(
  Schema.Literal(false, 0, "", true, "email", "EUR", "49.90"),
  Schema.Null,
  Schema.String,
  Schema.Number.pipe(Schema.finite())
)

export const EventProperties = Schema.Struct({
  method: Schema.optionalWith(PropValue, { exact: true }),
  revenue: Schema.optionalWith(PropValue, { exact: true }),
  total: Schema.optionalWith(PropValue, { exact: true }),
  value: Schema.optionalWith(PropValue, { exact: true }),
  currency: Schema.optionalWith(PropValue, { exact: true }),
  order_id: Schema.optionalWith(PropValue, { exact: true })
})
export type EventProperties = typeof EventProperties.Type

// ---------------------------------------------------------------------------------------------
// Whole events

export const EmailSlot = Schema.Literal("traits", "context.traits", "properties")
export type EmailSlot = typeof EmailSlot.Type

/** A mapped event with a valid email in one of its three slots. */
export const MappedCase = Schema.Struct({
  event: MappedEventSpelling,
  email: RawValidEmail,
  emailAt: EmailSlot,
  traits: Schema.optionalWith(NameTraits, { exact: true }),
  contextTraits: Schema.optionalWith(NameTraits, { exact: true }),
  properties: Schema.optionalWith(EventProperties, { exact: true }),
  consent: ConsentForm
})
export type MappedCase = typeof MappedCase.Type

type Json = Record<string, unknown>

/** The event as it arrives on the delivery topic (before decoding). */
export const eventOf = (c: {
  readonly event: { readonly type: string; readonly event?: string }
  readonly traits?: Json | undefined
  readonly contextTraits?: Json | undefined
  readonly properties?: Json | undefined
  readonly consent?: unknown
  readonly emails?: Partial<Record<EmailSlot, unknown>>
}): Json => {
  const withEmail = (fields: Json | undefined, slot: EmailSlot): Json | undefined =>
    c.emails !== undefined && slot in c.emails ? { ...fields, email: c.emails[slot] } : fields
  const traits = withEmail(c.traits, "traits")
  const contextTraits = withEmail(c.contextTraits, "context.traits")
  const properties = withEmail(c.properties, "properties")
  const context: Json = {}
  if (contextTraits !== undefined) context["traits"] = contextTraits
  if (c.consent !== undefined) context["consent"] = c.consent
  const event: Json = { type: c.event.type, messageId: "7b0c9c4e-0000-4000-8000-000000000000" }
  if (c.event.event !== undefined) event["event"] = c.event.event
  if (traits !== undefined) event["traits"] = traits
  if (properties !== undefined) event["properties"] = properties
  if (Object.keys(context).length > 0) event["context"] = context
  return event
}

export const mappedEventOf = (c: MappedCase): Json =>
  eventOf({ ...c, emails: { [c.emailAt]: c.email } })

// ---------------------------------------------------------------------------------------------
// Oracles for the Default preset (README, "The Default preset")

/** No value: absent, null or "". `false` and `0` are values. */
export const hasValue = (v: unknown): boolean => v !== undefined && v !== null && v !== ""

/** `traits` over `context.traits`, key by key; a key of `traits` without a value does not hide one below. */
export const expectedTraits = (traits: Json | undefined, contextTraits: Json | undefined): Json => {
  const out: Json = { ...contextTraits }
  for (const [k, v] of Object.entries(traits ?? {})) if (hasValue(v) || !(k in out)) out[k] = v
  return out
}

const firstValue = (...vs: ReadonlyArray<unknown>): unknown => vs.find(hasValue)

const firstText = (...vs: ReadonlyArray<unknown>): string | undefined => {
  const v = vs.find((x) => typeof x === "string" && x.trim() !== "")
  return typeof v === "string" ? v.trim() : undefined
}

export const expectedName = (traits: Json): string | undefined => {
  const full = `${firstText(traits["first_name"], traits["firstName"]) ?? ""} ${
    firstText(traits["last_name"], traits["lastName"]) ?? ""
  }`.trim()
  return full !== "" ? full : firstText(traits["name"])
}

export const expectedProperties = (kind: MappedEvent, traits: Json, properties: Json): Json => {
  const out: Json = {}
  const put = (name: string, v: unknown) => {
    if (hasValue(v)) out[name] = v
  }
  put("first_name", firstValue(traits["first_name"], traits["firstName"]))
  put("last_name", firstValue(traits["last_name"], traits["lastName"]))
  if (kind === "Signed Up") put("signup_method", properties["method"])
  if (kind === "Order Completed") {
    put("last_order_value", firstValue(properties["revenue"], properties["total"], properties["value"]))
    put("last_order_currency", properties["currency"])
  }
  return out
}

export const expectedAction = (kind: MappedEvent, consent: ConsentState) =>
  kind === "Subscribed"
    ? "addforce"
    : kind === "Unsubscribed"
    ? "unsub"
    : consent === "Granted"
    ? "addforce"
    : consent === "Withdrawn"
    ? "unsub"
    : "addnoforce"

// ---------------------------------------------------------------------------------------------
// Loose events: the SignalEvent shape with the keys the mapping reads, holding anything at all

const TraitKey = Schema.Union(
  Schema.Literal("email", "first_name", "firstName", "last_name", "lastName", "name"),
  Schema.String
)
const PropertyKey = Schema.Union(Schema.Literal("email", "method", "revenue", "total", "value", "currency"), Schema.String)
const LooseValue = Schema.Union(RawValidEmail, InvalidEmail, NameValue, PropValue, Schema.Unknown)
const LooseFields = Schema.Record({ key: TraitKey, value: LooseValue })

/** Anything decodable as a SignalEvent, biased towards mapped names and the fields the mapping reads. */
export const LooseEvent = Schema.Struct({
  type: Schema.Literal("track", "identify", "page", "screen", "group", "alias"),
  event: Schema.optionalWith(
    Schema.Union(...MAPPED_EVENTS.map(Spelling), Schema.String),
    { exact: true }
  ),
  name: Schema.optionalWith(Schema.String, { exact: true }),
  traits: Schema.optionalWith(Schema.NullOr(LooseFields), { exact: true }),
  properties: Schema.optionalWith(Schema.Record({ key: PropertyKey, value: LooseValue }), { exact: true }),
  context: Schema.optionalWith(
    Schema.Struct({
      traits: Schema.optionalWith(LooseFields, { exact: true }),
      consent: Schema.optionalWith(
        Schema.Union(ConsentFlags, ConsentList, ConsentMap, Schema.Record({ key: Schema.String, value: Schema.Unknown })),
        { exact: true }
      )
    }),
    { exact: true }
  )
})

// ---------------------------------------------------------------------------------------------
// Poison: input lines nobody should have sent, each with the addresses planted in it

/** An address that is certainly one (so a leak of it is unmistakable). */
const plantedEmail = (fc: FC) =>
  fc.tuple(fc.stringMatching(/^[a-z][a-z0-9]{3,10}$/), fc.stringMatching(/^[a-z]{3,10}$/))
    .map(([local, domain]) => `${local}@${domain}.example`)

const nested = (open: string, close: string, depth: number, inner: string) =>
  `${open.repeat(depth)}${inner}${close.repeat(depth)}`

/**
 * One input line as the reader hands it over (text, whatever the bytes were), and the emails it
 * holds. Deep, wide, huge, control characters, lone surrogates, non-UTF-8 bytes, emails in the
 * places a schema rejects, and valid events whose values do not fit.
 */
export const PoisonLine = Schema.Struct({ text: Schema.String, emails: Schema.Array(Schema.String) }).annotations({
  arbitrary: () => (fc) => {
    const plain = (text: FastCheck.Arbitrary<string>) => text.map((t) => ({ text: t, emails: [] as Array<string> }))
    const withEmail = (make: (email: string) => string) =>
      plantedEmail(fc).map((email) => ({ text: make(email), emails: [email] }))
    return fc.oneof(
      plain(fc.json()),
      plain(fc.string({ unit: "binary" })),
      // any UTF-16 code units: lone surrogates and control characters included
      plain(fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 }).map((us) => String.fromCharCode(...us))),
      // bytes that need not be UTF-8, decoded as the reader decodes them
      plain(fc.uint8Array({ maxLength: 60 }).map((b) => new TextDecoder().decode(b))),
      plain(fc.tuple(fc.constantFrom(["[", "]"], ['{"a":', "}"], ['{"traits":', "}"]), fc.integer({ min: 1, max: 20_000 }))
        .map(([[open, close], depth]) => nested(open!, close!, depth, "1"))),
      plain(fc.integer({ min: 1, max: 120_000 }).map((n) => `[${"1,".repeat(n)}1]`)),
      plain(fc.tuple(fc.constantFrom("x", "\u0001", "é", "\u{1F600}"), fc.integer({ min: 1, max: 300_000 }))
        .map(([c, n]) => c.repeat(n))),
      plain(fc.tuple(fc.constantFrom("x", "\u0001", "\ud800"), fc.integer({ min: 1, max: 300_000 }))
        .map(([c, n]) => JSON.stringify({ type: "track", event: "Signed Up", traits: { note: c.repeat(n) } }))),
      withEmail((e) => JSON.stringify({ type: "track", event: "Signed Up", traits: e })),
      withEmail((e) => JSON.stringify({ type: "track", event: "Signed Up", userId: { id: e } })),
      withEmail((e) => JSON.stringify({ type: "identify", context: { traits: e } })),
      withEmail((e) => JSON.stringify({ type: e, traits: { email: e } })),
      withEmail((e) => JSON.stringify([e])),
      withEmail((e) => JSON.stringify(e)),
      withEmail((e) => `${e} is not JSON`),
      withEmail((e) => `{"type":"track","traits":{"email":"${e}"`),
      withEmail((e) =>
        JSON.stringify({ type: "track", event: "Order Completed", traits: { email: e }, properties: { revenue: e, currency: { e } } })
      ),
      withEmail((e) => nested('{"traits":', "}", 12_000, JSON.stringify(e)))
    )
  }
})
export type PoisonLine = typeof PoisonLine.Type
