/**
 * Marketing consent, read from `context.consent` (Signal's event contract, README). Pure resolution in
 * `resolveConsent`; the service only binds the configured category.
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { SignalEvent } from "./Domain/SignalEvent.js"

export type ConsentState = "Granted" | "Withdrawn" | "Unknown"

const fromBoolean = (v: unknown): ConsentState | undefined =>
  v === true ? "Granted" : v === false ? "Withdrawn" : undefined

/**
 * `consent[category]` as a boolean wins; else `consent.categories`, either a map like `consent`
 * or a list of granted names. A list is the whole set of grants, so a category missing from it
 * is withdrawn: subscribing someone who did not opt in is the worse mistake.
 */
export const resolveConsent = (event: SignalEvent, category: string): ConsentState => {
  const consent = event.context?.consent
  if (consent === undefined) return "Unknown"
  const direct = fromBoolean(consent[category])
  if (direct !== undefined) return direct
  const categories = consent["categories"]
  if (Array.isArray(categories)) return categories.includes(category) ? "Granted" : "Withdrawn"
  if (typeof categories === "object" && categories !== null) {
    return fromBoolean((categories as Record<string, unknown>)[category]) ?? "Unknown"
  }
  return "Unknown"
}

export const DEFAULT_CONSENT_CATEGORY = "marketing"

/**
 * `explicit` (the default): standing consent (granted on an ordinary event) never re-subscribes a
 * contact Mailjet holds as unsubscribed; only an explicit `Subscribed` event does (see
 * Suppressions). `consent`: consent granted is always `addforce`, for accounts that want it.
 */
export type Resubscribe = "explicit" | "consent"

export class Consent extends Context.Tag("signal-mailjet/Consent")<Consent, {
  readonly category: string
  readonly resubscribe: Resubscribe
  readonly resolve: (event: SignalEvent) => ConsentState
}>() {
  static readonly make = (
    category: string = DEFAULT_CONSENT_CATEGORY,
    resubscribe: Resubscribe = "explicit"
  ): Context.Tag.Service<Consent> => ({
    category,
    resubscribe,
    resolve: (event) => resolveConsent(event, category)
  })

  /** The category from `MAILJET_CONSENT_CATEGORY` (default `marketing`); a blank one is a config error. */
  static readonly layer = Layer.effect(
    Consent,
    Effect.map(
      Config.all([
        Config.string("MAILJET_CONSENT_CATEGORY").pipe(
          Config.map((category) => category.trim()),
          Config.validate({ message: "must name a consent category, e.g. marketing", validation: (c) => c !== "" }),
          Config.withDefault(DEFAULT_CONSENT_CATEGORY)
        ),
        Config.literal("explicit", "consent")("MAILJET_RESUBSCRIBE").pipe(Config.withDefault("explicit" as const))
      ]),
      ([category, resubscribe]) => Consent.make(category, resubscribe)
    )
  )
}
