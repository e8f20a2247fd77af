import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { Consent, resolveConsent } from "../src/Consent.js"
import { coerceProperties } from "../src/Preset/Datatypes.js"
import type { ContactUpsert, Mapped } from "../src/Mapping.js"
import { DropReason, mapEvent, Mapping, normaliseEmail, requestBody } from "../src/Mapping.js"
import { DefaultPreset } from "../src/Preset/Preset.js"
import { SignalEvent } from "../src/Domain/SignalEvent.js"
import {
  Category,
  ConsentForm,
  EmailSlot,
  EmailWithInvisible,
  eventOf,
  expectedAction,
  expectedConsent,
  expectedName,
  expectedProperties,
  expectedTraits,
  hasValue,
  InvalidEmail,
  LooseEvent,
  MappedCase,
  mappedEventOf,
  MappedEventSpelling,
  NameTraits,
  NoEmailValue,
  RawValidEmail,
  Spelling,
  UnmappedTrackName
} from "./arbitraries.js"
import { SEED_BODY, SEED_EVENT } from "./support/seed.js"

const decode = Schema.decodeUnknownSync(SignalEvent)
const mapping = Mapping.make()
const consent = Consent.make()

/** What the delivery path does with one raw event, up to the managecontact body. */
const run = (raw: unknown): Mapped => {
  const event = decode(raw)
  return mapping.map(event, consent.resolve(event))
}

const upsertOf = (m: Mapped): ContactUpsert => {
  if (m._tag !== "Upsert") throw new Error(`expected an upsert, got ${m._tag === "Dropped" ? `Dropped: ${m.reason}` : "Erase"}`)
  return m.upsert
}

const droppedOf = (m: Mapped): string => {
  if (m._tag !== "Dropped") throw new Error(`expected a drop, got ${m._tag} for ${m._tag === "Upsert" ? m.upsert.email : m.email}`)
  return m.reason
}

/** The body as sent: properties fitted to the Default preset's datatypes. */
const bodyOf = (u: ContactUpsert): Record<string, unknown> => {
  const props = coerceProperties(u.properties, DefaultPreset.datatypes)
  if (Either.isLeft(props)) throw new Error(`properties do not fit: ${props.left}`)
  return requestBody(u, props.right)
}

const ConsentState = Schema.Literal("Granted", "Withdrawn", "Unknown")

const json = (v: unknown): Record<string, unknown> => v as Record<string, unknown>

const jsonData = (v: unknown): boolean =>
  v === null || typeof v === "string" || typeof v === "boolean" || (typeof v === "number" && Number.isFinite(v)) ||
  (typeof v === "object" && Object.values(v).every(jsonData))

describe("Mapping laws (Default preset)", () => {
  it.prop(
    "a mapped event with a valid email yields exactly one upsert keyed by the trimmed, lower-cased address",
    { c: MappedCase },
    ({ c }) => {
      const m = run(mappedEventOf(c))
      const upsert = upsertOf(m)
      const email = c.email.trim().toLowerCase()
      expect(upsert.email).toBe(email)
      const body = requestBody(upsert, upsert.properties)
      expect(body["Email"]).toBe(email)
      // the body's keys, in the order Mailjet's docs show them
      const keys = ["Email", "Name", "Action", "Properties"].filter((k) => k in body)
      expect(Object.keys(body)).toEqual(keys)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "the action follows the consent table; Subscribed is always addforce and Unsubscribed always unsub",
    { c: MappedCase },
    ({ c }) => {
      const upsert = upsertOf(run(mappedEventOf(c)))
      expect(upsert.action).toBe(expectedAction(c.event.kind, expectedConsent(c.consent, "marketing")))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "exactly the properties whose source has a value are written: false and 0 survive, undefined/null/\"\" never",
    { c: MappedCase },
    ({ c }) => {
      const upsert = upsertOf(run(mappedEventOf(c)))
      const traits = expectedTraits(c.traits, c.contextTraits)
      const expected = expectedProperties(c.event.kind, traits, json(c.properties ?? {}))
      // toStrictEqual: a key holding undefined is not the same as no key
      expect(upsert.properties).toStrictEqual(expected)
      for (const v of Object.values(upsert.properties)) expect(hasValue(v)).toBe(true)
      const body = requestBody(upsert, upsert.properties)
      expect("Properties" in body).toBe(Object.keys(expected).length > 0)
      // JSON data all through: no undefined, NaN or infinity that JSON would drop or turn to null.
      expect(jsonData(body)).toBe(true)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "Name is first + last name (traits over context.traits, either spelling), else traits.name; omitted when empty",
    { c: MappedCase },
    ({ c }) => {
      const upsert = upsertOf(run(mappedEventOf(c)))
      const name = expectedName(expectedTraits(c.traits, c.contextTraits))
      expect(upsert.name).toBe(name)
      const body = requestBody(upsert, upsert.properties)
      if (name === undefined) expect("Name" in body).toBe(false)
      else expect(body["Name"]).toBe(name)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "traits override context.traits key by key",
    { event: MappedEventSpelling, email: RawValidEmail, traits: NameTraits, contextTraits: NameTraits },
    ({ contextTraits, email, event, traits }) => {
      const upsert = upsertOf(run(eventOf({ event, traits, contextTraits, emails: { traits: email } })))
      const merged = expectedTraits(traits, contextTraits)
      expect(upsert.name).toBe(expectedName(merged))
      expect(upsert.properties["first_name"]).toStrictEqual(
        [merged["first_name"], merged["firstName"]].find(hasValue)
      )
      expect(upsert.properties["last_name"]).toStrictEqual(
        [merged["last_name"], merged["lastName"]].find(hasValue)
      )
    },
    { fastCheck: { numRuns: 300 } }
  )

  const Slot = Schema.Union(
    Schema.Struct({ kind: Schema.Literal("valid"), value: RawValidEmail }),
    Schema.Struct({ kind: Schema.Literal("invalid"), value: InvalidEmail }),
    Schema.Struct({ kind: Schema.Literal("none"), value: NoEmailValue })
  )
  const slotOf = Schema.optionalWith(Slot, { exact: true })

  it.prop(
    "email is the first non-empty string of traits.email, context.traits.email, properties.email",
    {
      event: MappedEventSpelling,
      slots: Schema.Struct({ traits: slotOf, "context.traits": slotOf, properties: slotOf })
    },
    ({ event, slots }) => {
      const emails: Partial<Record<EmailSlot, unknown>> = {}
      for (const slot of EmailSlot.literals) {
        const s = slots[slot]
        if (s !== undefined) emails[slot] = s.value
      }
      const m = run(eventOf({ event, emails }))
      const first = EmailSlot.literals.map((slot) => slots[slot]).find((s) => s !== undefined && s.kind !== "none")
      if (first === undefined) expect(droppedOf(m)).toBe(DropReason.noEmail)
      else if (first.kind === "invalid") expect(droppedOf(m)).toBe(DropReason.invalidEmail)
      else expect(upsertOf(m).email).toBe(String(first.value).trim().toLowerCase())
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "an event without an email is dropped with the reason, never upserted",
    { c: MappedCase, none: Schema.Struct({ traits: NoEmailValue, ctx: NoEmailValue, props: NoEmailValue }) },
    ({ c, none }) => {
      const raw = eventOf({ ...c, emails: { traits: none.traits, "context.traits": none.ctx, properties: none.props } })
      expect(droppedOf(run(raw))).toBe(DropReason.noEmail)
      expect(droppedOf(run(eventOf(c)))).toBe(DropReason.noEmail)
    }
  )

  it.prop(
    "an event whose email is not an address is dropped with the reason, never upserted",
    { c: MappedCase, bad: InvalidEmail },
    ({ bad, c }) => {
      expect(droppedOf(run(mappedEventOf({ ...c, email: bad })))).toBe(DropReason.invalidEmail)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "page, screen, group and alias calls are dropped \"event not mapped\", whatever they are named",
    {
      type: Schema.Literal("page", "screen", "group", "alias"),
      spelling: MappedEventSpelling,
      email: RawValidEmail,
      consent: ConsentForm
    },
    ({ consent, email, spelling, type }) => {
      const raw = { ...eventOf({ event: { type }, consent, emails: { traits: email } }), name: spelling.event ?? "Home" }
      if (spelling.event !== undefined) (raw as Record<string, unknown>)["event"] = spelling.event
      expect(droppedOf(run(raw))).toContain("event not mapped")
    }
  )

  it.prop(
    "track events the preset does not map are dropped \"event not mapped\"",
    { name: UnmappedTrackName, email: RawValidEmail, consent: ConsentForm },
    ({ consent, email, name }) => {
      expect(droppedOf(run(eventOf({ event: { type: "track", event: name }, consent, emails: { traits: email } }))))
        .toContain("event not mapped")
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "the consent category is configurable: the action follows the configured category",
    { c: MappedCase, category: Category },
    ({ c, category }) => {
      const event = decode(mappedEventOf(c))
      const upsert = upsertOf(Mapping.make().map(event, Consent.make(category).resolve(event)))
      expect(upsert.action).toBe(expectedAction(c.event.kind, expectedConsent(c.consent, category)))
    }
  )

  it.prop(
    "the mapping never throws for arbitrary decoded SignalEvents, and every upsert is well-formed",
    { event: SignalEvent, state: ConsentState },
    ({ event, state }) => {
      const m = mapEvent(DefaultPreset, event, state)
      resolveConsent(event, "marketing")
      if (m._tag === "Upsert") wellFormed(m.upsert)
      else if (m._tag === "Erase") expect(normaliseEmail(m.email)).toBe(m.email)
      else expect(Object.values(DropReason)).toContain(m.reason)
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "the mapping never throws for events with anything in the fields it reads, and every upsert is well-formed",
    { loose: LooseEvent },
    ({ loose }) => {
      const event = decode(loose)
      const m = mapping.map(event, consent.resolve(event))
      if (m._tag === "Upsert") wellFormed(m.upsert)
      else if (m._tag === "Erase") expect(normaliseEmail(m.email)).toBe(m.email)
      else expect(Object.values(DropReason)).toContain(m.reason)
    },
    { fastCheck: { numRuns: 1000 } }
  )
})

/** What any upsert must satisfy, whatever the event held. */
const wellFormed = (u: ContactUpsert): void => {
  expect(normaliseEmail(u.email)).toBe(u.email)
  expect(u.email).toBe(u.email.trim().toLowerCase())
  expect(["addforce", "addnoforce", "unsub"]).toContain(u.action)
  if (u.name !== undefined) {
    expect(u.name).not.toBe("")
    expect(u.name).toBe(u.name.trim())
  }
  for (const v of Object.values(u.properties)) expect(hasValue(v)).toBe(true)
  for (const k of Object.keys(u.properties)) expect(DefaultPreset.datatypes.has(k)).toBe(true)
  const props = coerceProperties(u.properties, DefaultPreset.datatypes)
  if (Either.isRight(props)) {
    for (const v of Object.values(props.right)) expect(["string", "number", "boolean"]).toContain(typeof v)
    const body = requestBody(u, props.right)
    expect(JSON.parse(JSON.stringify(body))).toStrictEqual(body)
  } else {
    // A misfit is dead-lettered with its property named, never sent.
    expect(props.left).toMatch(/^property "[^"]+" /)
  }
}

describe("normaliseEmail", () => {
  it.prop("a valid address is trimmed and lower-cased", { raw: RawValidEmail }, ({ raw }) => {
    expect(normaliseEmail(raw)).toBe(raw.trim().toLowerCase())
  })

  it.prop("the result is a fixed point, or there is none", { raw: Schema.Union(RawValidEmail, InvalidEmail, Schema.String) }, ({ raw }) => {
    const email = normaliseEmail(raw)
    if (email !== undefined) {
      expect(email).toBe(raw.trim().toLowerCase())
      expect(normaliseEmail(email)).toBe(email)
    }
  })

  it.prop("what is not an address is rejected", { raw: InvalidEmail }, ({ raw }) => {
    expect(normaliseEmail(raw)).toBeUndefined()
  })

  it.prop("an address with a control or format character inside is rejected", { raw: EmailWithInvisible }, ({ raw }) => {
    expect(normaliseEmail(raw)).toBeUndefined()
    // the same address without it is valid: the character alone is why
    expect(normaliseEmail(raw.replace(/[\p{Cc}\p{Cf}]/gu, ""))).toBeDefined()
  })
})

describe("Mapping examples (Signal's event contract, README)", () => {
  const seed = SEED_EVENT

  it("the seed example gives exactly the seed's request body", () => {
    const event = decode(JSON.parse(JSON.stringify(seed)))
    const upsert = upsertOf(Mapping.make().map(event, Consent.make().resolve(event)))
    const properties = coerceProperties(upsert.properties, DefaultPreset.datatypes)
    expect(Either.isRight(properties)).toBe(true)
    const body = requestBody(upsert, Either.getOrThrow(properties))
    const expected = { ...SEED_BODY, Properties: { ...SEED_BODY.Properties } }
    expect(body).toStrictEqual(expected)
    // byte for byte, key order included
    expect(JSON.stringify(body)).toBe(JSON.stringify(expected))
  })

  it("the seed with consent withdrawn or absent unsubscribes or adds without forcing", () => {
    const withConsent = (c: unknown) => ({ ...seed, context: { ...seed.context, consent: c } })
    expect(upsertOf(run(withConsent({ marketing: false }))).action).toBe("unsub")
    expect(upsertOf(run(withConsent({ analytics: true }))).action).toBe("addnoforce")
    expect(upsertOf(run({ ...seed, context: { traits: seed.context.traits } })).action).toBe("addnoforce")
  })

  it("an identify call is the Identified event: camelCase names, upper-case email, consent false", () => {
    const raw = {
      type: "identify",
      userId: "u-1002",
      traits: { email: "Max.Mustermann@Example.de", firstName: "Max", lastName: "Mustermann" },
      context: { consent: { marketing: false } }
    }
    expect(bodyOf(upsertOf(run(raw)))).toStrictEqual({
      Email: "max.mustermann@example.de",
      Name: "Max Mustermann",
      Action: "unsub",
      Properties: { first_name: "Max", last_name: "Mustermann" }
    })
  })

  it("Order Completed: revenue \"49.90\" lands as 49.9; total and value are fallbacks", () => {
    const order = (properties: Record<string, unknown>) => ({
      type: "track",
      event: "Order Completed",
      user_id: "u-1001",
      properties,
      context: { traits: { email: "jane.doe@example.com" }, consent: { marketing: true } }
    })
    expect(bodyOf(upsertOf(run(order({ order_id: "o-77", revenue: "49.90", currency: "EUR" }))))).toStrictEqual({
      Email: "jane.doe@example.com",
      Action: "addforce",
      Properties: { last_order_value: 49.9, last_order_currency: "EUR" }
    })
    expect(upsertOf(run(order({ total: 12, value: 3 }))).properties).toStrictEqual({ last_order_value: 12 })
    expect(upsertOf(run(order({ revenue: "", total: null, value: 3 }))).properties).toStrictEqual({
      last_order_value: 3
    })
    expect(upsertOf(run(order({ revenue: 0, total: 12 }))).properties).toStrictEqual({ last_order_value: 0 })
  })

  it("false and 0 are values: they are written", () => {
    const raw = {
      type: "track",
      event: "signed_up",
      traits: { email: "a@b.io", first_name: 0 },
      properties: { method: false }
    }
    const upsert = upsertOf(run(raw))
    expect(upsert.properties).toStrictEqual({ first_name: 0, signup_method: false })
    expect(bodyOf(upsert)).toStrictEqual({
      Email: "a@b.io",
      Action: "addnoforce",
      Properties: { first_name: "0", signup_method: "false" }
    })
  })

  it("Subscribed forces the subscription and falls back to traits.name; Unsubscribed sends only Email and Action", () => {
    expect(bodyOf(upsertOf(run({
      type: "track",
      event: "Subscribed",
      traits: { email: "sam.lee@example.com", name: "Sam Lee" },
      context: { consent: { marketing: false } }
    })))).toStrictEqual({ Email: "sam.lee@example.com", Name: "Sam Lee", Action: "addforce" })
    const body = bodyOf(upsertOf(run({
      type: "track",
      event: "unsubscribed",
      traits: { email: "sam.lee@example.com" },
      context: { consent: { marketing: true } }
    })))
    expect(JSON.stringify(body)).toBe(JSON.stringify({ Email: "sam.lee@example.com", Action: "unsub" }))
  })

  it("Name: first name alone, last name alone, blank parts, and traits.name only as a fallback", () => {
    const nameOf = (traits: Record<string, unknown>) =>
      upsertOf(run({ type: "identify", traits: { email: "a@b.io", ...traits } })).name
    expect(nameOf({ first_name: " Jane ", last_name: " Doe " })).toBe("Jane Doe")
    expect(nameOf({ first_name: "Jane" })).toBe("Jane")
    expect(nameOf({ lastName: "Doe" })).toBe("Doe")
    expect(nameOf({ first_name: "Jane", name: "J. D." })).toBe("Jane")
    expect(nameOf({ first_name: "  ", last_name: "", name: " J. D. " })).toBe("J. D.")
    expect(nameOf({ first_name: "", firstName: "Jane" })).toBe("Jane")
    expect(nameOf({ name: "   " })).toBeUndefined()
    expect(nameOf({})).toBeUndefined()
  })

  it("traits win over context.traits; a trait with no value does not hide the one in context.traits", () => {
    const raw = (traits: Record<string, unknown>) => ({
      type: "track",
      event: "Signed Up",
      traits,
      context: { traits: { email: "ctx@example.com", first_name: "Ctx", last_name: "Doe" } }
    })
    const a = upsertOf(run(raw({ email: "Top@Example.com", first_name: "Top" })))
    expect(a.email).toBe("top@example.com")
    expect(a.name).toBe("Top Doe")
    expect(a.properties).toStrictEqual({ first_name: "Top", last_name: "Doe" })
    const b = upsertOf(run(raw({ email: "", first_name: null, last_name: "" })))
    expect(b.email).toBe("ctx@example.com")
    expect(b.name).toBe("Ctx Doe")
    expect(b.properties).toStrictEqual({ first_name: "Ctx", last_name: "Doe" })
  })

  it("email precedence: traits.email, then context.traits.email, then properties.email", () => {
    const raw = (traits: unknown, ctx: unknown, props: unknown) => ({
      type: "track",
      event: "Subscribed",
      traits: { email: traits },
      properties: { email: props },
      context: { traits: { email: ctx } }
    })
    expect(upsertOf(run(raw("t@example.com", "c@example.com", "p@example.com"))).email).toBe("t@example.com")
    expect(upsertOf(run(raw("  ", "c@example.com", "p@example.com"))).email).toBe("c@example.com")
    expect(upsertOf(run(raw(null, 7, " P@Example.com "))).email).toBe("p@example.com")
    // the first non-empty string decides, even when it is not an address
    expect(droppedOf(run(raw("not-an-email", "c@example.com", "p@example.com")))).toBe(DropReason.invalidEmail)
  })

  it("drops: no email, an invalid one, and events the preset does not map", () => {
    expect(droppedOf(run({ type: "track", event: "Signed Up", properties: { method: "email" } }))).toBe(
      DropReason.noEmail
    )
    expect(droppedOf(run({ type: "identify", traits: { email: "jane.doe@" } }))).toBe(DropReason.invalidEmail)
    for (
      const raw of [
        { type: "page", name: "Home", traits: { email: "a@b.io" } },
        { type: "screen", name: "Signed Up", traits: { email: "a@b.io" } },
        { type: "track", event: "Product Viewed", traits: { email: "a@b.io" } },
        { type: "track", traits: { email: "a@b.io" } },
        { type: "track", event: "Identify", traits: { email: "a@b.io" } },
        { type: "group", traits: { email: "a@b.io" } }
      ]
    ) expect(droppedOf(run(raw))).toContain("event not mapped")
  })

  it("every spelling variant of a mapped event is that event", () => {
    for (const event of ["Signed Up", "signed_up", "signed-up", "SIGNED UP", "SignedUp", " signed.up "]) {
      expect(upsertOf(run({ type: "track", event, traits: { email: "a@b.io" } })).action).toBe("addnoforce")
    }
    for (const event of ["Order Completed", "order_completed", "ORDER-COMPLETED"]) {
      expect(upsertOf(run({ type: "track", event, traits: { email: "a@b.io" } })).action).toBe("addnoforce")
    }
  })

  it.prop("(generator check) a generated spelling has exactly the event's letters", { s: Spelling("Order Completed") }, ({ s }) => {
    expect(s.toLowerCase().replace(/[^a-z]/g, "")).toBe("ordercompleted")
  })
})
