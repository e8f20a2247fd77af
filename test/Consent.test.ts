import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Schema } from "effect"
import { Consent, DEFAULT_CONSENT_CATEGORY, resolveConsent } from "../src/Consent.js"
import { SignalEvent } from "../src/Domain/SignalEvent.js"
import { Category, ConsentFlags, ConsentForm, ConsentList, ConsentMap, expectedConsent } from "./arbitraries.js"

const decode = Schema.decodeUnknownSync(SignalEvent)

/** A track event carrying `consent` as its `context.consent` (none when undefined). */
const withConsent = (consent: unknown): SignalEvent =>
  decode({ type: "track", event: "Signed Up", ...(consent === undefined ? {} : { context: { consent } }) })

describe("Consent laws", () => {
  it.prop(
    "every form resolves as the doc says: true granted, false withdrawn, absent unknown; a list grants what it holds",
    { form: ConsentForm, category: Category },
    ({ category, form }) => {
      expect(resolveConsent(withConsent(form), category)).toBe(expectedConsent(form, category))
      expect(Consent.make(category).resolve(withConsent(form))).toBe(expectedConsent(form, category))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "a boolean under the category itself wins over `categories`",
    { flag: Schema.Boolean, categories: Schema.Union(ConsentList, ConsentMap), category: Category },
    ({ categories, category, flag }) => {
      const state = resolveConsent(withConsent({ ...categories, [category]: flag }), category)
      expect(state).toBe(flag ? "Granted" : "Withdrawn")
    }
  )

  it.prop(
    "a value under the category that is not a boolean is not consent: `categories` decides",
    {
      junk: Schema.Union(Schema.Literal("true", "false", 1, 0, "yes"), Schema.Null),
      categories: Schema.Union(ConsentList, ConsentMap),
      category: Category
    },
    ({ categories, category, junk }) => {
      expect(resolveConsent(withConsent({ ...categories, [category]: junk }), category)).toBe(
        expectedConsent(categories, category)
      )
    }
  )

  it.prop(
    "other categories never decide the configured one",
    { flags: ConsentFlags, category: Category },
    ({ category, flags }) => {
      const { [category]: own, ...others } = flags
      const state = resolveConsent(withConsent(others), category)
      expect(state).toBe("Unknown")
      expect(resolveConsent(withConsent(flags), category)).toBe(
        own === undefined ? "Unknown" : own ? "Granted" : "Withdrawn"
      )
    }
  )

  it.prop(
    "resolution never throws, whatever the event and category",
    { event: SignalEvent, category: Schema.String },
    ({ category, event }) => {
      expect(["Granted", "Withdrawn", "Unknown"]).toContain(resolveConsent(event, category))
    },
    { fastCheck: { numRuns: 300 } }
  )
})

describe("Consent examples (Signal's event contract, README)", () => {
  const consent = Consent.make()

  it("the default category is marketing", () => {
    expect(DEFAULT_CONSENT_CATEGORY).toBe("marketing")
    expect(consent.category).toBe("marketing")
  })

  it("context.consent flags", () => {
    const full = { marketing: true, analytics: true, functional: true, advertising: false }
    expect(consent.resolve(withConsent(full))).toBe("Granted")
    expect(consent.resolve(withConsent({ ...full, marketing: false }))).toBe("Withdrawn")
    expect(consent.resolve(withConsent({ analytics: true }))).toBe("Unknown")
    expect(consent.resolve(withConsent({}))).toBe("Unknown")
    expect(consent.resolve(withConsent(undefined))).toBe("Unknown")
    expect(consent.resolve(decode({ type: "track", context: { consent: null } }))).toBe("Unknown")
    expect(consent.resolve(decode({ type: "track", context: null }))).toBe("Unknown")
    // a string is not a boolean
    expect(consent.resolve(withConsent({ marketing: "true" }))).toBe("Unknown")
    expect(Consent.make("advertising").resolve(withConsent(full))).toBe("Withdrawn")
  })

  it("categories as a list of granted names", () => {
    expect(consent.resolve(withConsent({ categories: ["analytics", "marketing"] }))).toBe("Granted")
    expect(consent.resolve(withConsent({ categories: ["analytics"] }))).toBe("Withdrawn")
    expect(consent.resolve(withConsent({ categories: [] }))).toBe("Withdrawn")
  })

  it("categories as a map, like consent", () => {
    expect(consent.resolve(withConsent({ categories: { marketing: true } }))).toBe("Granted")
    expect(consent.resolve(withConsent({ categories: { marketing: false, analytics: true } }))).toBe("Withdrawn")
    expect(consent.resolve(withConsent({ categories: { analytics: true } }))).toBe("Unknown")
    expect(consent.resolve(withConsent({ categories: "marketing" }))).toBe("Unknown")
    expect(consent.resolve(withConsent({ categories: null }))).toBe("Unknown")
  })

  it("a configured category other than marketing", () => {
    const newsletter = Consent.make("newsletter")
    expect(newsletter.category).toBe("newsletter")
    expect(newsletter.resolve(withConsent({ newsletter: true, marketing: false }))).toBe("Granted")
    expect(newsletter.resolve(withConsent({ newsletter: false, marketing: true }))).toBe("Withdrawn")
    expect(newsletter.resolve(withConsent({ marketing: true }))).toBe("Unknown")
    expect(newsletter.resolve(withConsent({ categories: ["marketing", "newsletter"] }))).toBe("Granted")
    expect(newsletter.resolve(withConsent({ categories: ["marketing"] }))).toBe("Withdrawn")
    expect(newsletter.resolve(withConsent({ categories: { newsletter: true } }))).toBe("Granted")
    expect(newsletter.resolve(withConsent({ categories: { marketing: true } }))).toBe("Unknown")
  })
})

describe("Consent.layer", () => {
  const withEnv = (env: Record<string, string>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

  it.effect("reads MAILJET_CONSENT_CATEGORY, trimmed", () =>
    Effect.gen(function*() {
      const consent = yield* Consent
      expect(consent.category).toBe("newsletter")
      expect(consent.resolve(withConsent({ newsletter: true }))).toBe("Granted")
    }).pipe(Effect.provide(Consent.layer), withEnv({ MAILJET_CONSENT_CATEGORY: " newsletter " })))

  it.effect("defaults to marketing", () =>
    Effect.gen(function*() {
      expect((yield* Consent).category).toBe("marketing")
    }).pipe(Effect.provide(Consent.layer), withEnv({})))

  it.effect("a blank category is a configuration error, not a category named \"\"", () =>
    Effect.gen(function*() {
      for (const blank of ["", "   "]) {
        const exit = yield* Effect.exit(
          Consent.pipe(Effect.provide(Consent.layer), withEnv({ MAILJET_CONSENT_CATEGORY: blank }))
        )
        expect(Exit.isFailure(exit)).toBe(true)
      }
    }))
})
