/**
 * From a Signal event and its consent to a Mailjet contact upsert, or a drop with a reason.
 * Pure functions (property-tested); the service binds a preset.
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { ConsentState } from "./Consent.js"
import type { Action, Preset, Source } from "./Preset/Preset.js"
import { canonicalEventName, DefaultPreset, loadPreset } from "./Preset/Preset.js"
import type { SignalEvent } from "./Domain/SignalEvent.js"

export type PropertyValue = string | number | boolean

/** One `managecontact` call, before property values are fitted to Mailjet's datatypes. */
export interface ContactUpsert {
  readonly email: string
  readonly name: string | undefined
  readonly action: Action
  /** The preset fixes the action (`Subscribed` → addforce): it does not come from standing consent. */
  readonly explicit: boolean
  readonly properties: Readonly<Record<string, unknown>>
}

export type Mapped =
  | { readonly _tag: "Upsert"; readonly upsert: ContactUpsert }
  /** A deletion request: the contact is erased (a preset rule's `"action": "erase"`). */
  | { readonly _tag: "Erase"; readonly email: string }
  | { readonly _tag: "Dropped"; readonly reason: string }

export const DropReason = {
  noEmail: "no email in traits, context.traits or properties",
  invalidEmail: "email is not a valid address",
  notMapped: "event not mapped by the preset"
} as const

// Deliberately loose: Mailjet is the judge of deliverability; this only keeps out what cannot be an address.
const EMAIL = /^[^\s@"<>(),;:\\[\]]+@[^\s@"<>(),;:\\[\]]+\.[^\s@"<>(),;:\\[\].]+$/u

// Control and format characters (NUL, zero-width space, bidi overrides): an address that carries
// them would be a second contact that looks the same as the first.
const INVISIBLE = /[\p{Cc}\p{Cf}]/u

/** Trimmed and lower-cased, so case variants are one contact; undefined when it cannot be an address. */
export const normaliseEmail = (raw: string): string | undefined => {
  const email = raw.trim().toLowerCase()
  if (email.length > 254) return undefined
  const at = email.lastIndexOf("@")
  if (at < 1 || at > 64 || !EMAIL.test(email) || email.includes("..") || INVISIBLE.test(email)) return undefined
  return email
}

const nonEmptyString = (v: unknown): v is string => typeof v === "string" && v.trim() !== ""

/** No value: absent, null or an empty string. `false` and `0` are values. */
const hasValue = (v: unknown): boolean => v !== undefined && v !== null && v !== ""

/**
 * `traits` over `context.traits`, key by key. A key of `traits` without a value (null, "") does not
 * hide a value in `context.traits`, as with the email.
 */
export const mergedTraits = (event: SignalEvent): Readonly<Record<string, unknown>> => {
  const top = event.traits
  const below = event.context?.traits
  if (below === undefined) return top ?? {}
  if (top === undefined) return below
  const merged = new Map(Object.entries(below))
  for (const [key, value] of Object.entries(top)) {
    if (hasValue(value) || !merged.has(key)) merged.set(key, value)
  }
  // fromEntries defines own keys, so a "__proto__" key stays data
  return Object.fromEntries(merged)
}

/** The first non-empty string of `traits.email`, `context.traits.email`, `properties.email`. */
export const rawEmail = (event: SignalEvent): string | undefined => {
  // In turn, not an array of the three: read for every event.
  const top = event.traits?.["email"]
  if (nonEmptyString(top)) return top
  const below = event.context?.traits?.["email"]
  if (nonEmptyString(below)) return below
  const property = event.properties?.["email"]
  return nonEmptyString(property) ? property : undefined
}

/** The Default preset's deletion request, which Segment-style `type: "delete"` calls are too. */
export const DELETION_REQUESTED = canonicalEventName("Deletion Requested")

/** `identify` is the `Identified` event, `delete` `Deletion Requested`; page and screen calls are never mapped. */
export const eventKey = (event: SignalEvent): string | undefined =>
  event.type === "identify"
    ? "identified"
    : event.type === "delete"
    ? DELETION_REQUESTED
    : event.type === "track" && event.event !== undefined
    ? canonicalEventName(event.event)
    : undefined

/** Own keys only: `traits.constructor` is not a value of the event. */
const field = (v: unknown, key: string): unknown =>
  typeof v === "object" && v !== null && Object.hasOwn(v, key) ? (v as Record<string, unknown>)[key] : undefined

/** The id fields come in both spellings (Signal's event contract, README): a path root names both. */
const SNAKE_CASE: Readonly<Record<string, string>> = { userId: "user_id", anonymousId: "anonymous_id" }

/** A preset's paths, split once: they are read for every event (a preset holds a few dozen). */
const splitPaths = new Map<string, ReadonlyArray<string>>()
const pathKeys = (path: string): ReadonlyArray<string> => {
  let keys = splitPaths.get(path)
  if (keys === undefined) {
    if (splitPaths.size >= 10_000) splitPaths.clear()
    keys = path.split(".")
    splitPaths.set(path, keys)
  }
  return keys
}

const readPath = (event: SignalEvent, traits: Readonly<Record<string, unknown>>, path: string): unknown => {
  const keys = pathKeys(path)
  const head = keys[0]!
  const snake = SNAKE_CASE[head]
  let current: unknown = head === "traits"
    ? traits
    : snake !== undefined && !hasValue(field(event, head))
    ? field(event, snake)
    : field(event, head)
  for (let i = 1; i < keys.length; i++) current = field(current, keys[i]!)
  return current
}

export const readSource = (event: SignalEvent, traits: Readonly<Record<string, unknown>>, source: Source): unknown => {
  if (typeof source === "string") return readPath(event, traits, source)
  if (Array.isArray(source)) {
    for (const path of source) {
      const v = readPath(event, traits, path)
      if (hasValue(v)) return v
    }
    return undefined
  }
  return (source as { readonly value: PropertyValue }).value
}

/** The first spelling that holds a name: `first_name: ""` does not hide `firstName`. */
const namePart = (traits: Readonly<Record<string, unknown>>, a: string, b: string) => {
  const first = traits[a]
  if (nonEmptyString(first)) return first.trim()
  const second = traits[b]
  return nonEmptyString(second) ? second.trim() : ""
}

/** `first_name + " " + last_name`, else `traits.name`; undefined when empty. */
export const contactName = (traits: Readonly<Record<string, unknown>>): string | undefined => {
  const full = `${namePart(traits, "first_name", "firstName")} ${namePart(traits, "last_name", "lastName")}`.trim()
  if (full !== "") return full
  const name = traits["name"]
  return nonEmptyString(name) ? name.trim() : undefined
}

export const actionFor = (consent: ConsentState): Action =>
  consent === "Granted" ? "addforce" : consent === "Withdrawn" ? "unsub" : "addnoforce"

export const mapEvent = (preset: Preset, event: SignalEvent, consent: ConsentState): Mapped => {
  const key = eventKey(event)
  const rule = key === undefined ? undefined : preset.events.get(key)
  if (rule === undefined) return { _tag: "Dropped", reason: DropReason.notMapped }
  const raw = rawEmail(event)
  if (raw === undefined) return { _tag: "Dropped", reason: DropReason.noEmail }
  const email = normaliseEmail(raw)
  if (email === undefined) return { _tag: "Dropped", reason: DropReason.invalidEmail }
  if (rule.action === "erase") return { _tag: "Erase", email }
  const traits = mergedTraits(event)
  const properties: Record<string, unknown> = {}
  for (const [property, source] of rule.properties) {
    const value = readSource(event, traits, source)
    if (hasValue(value)) properties[property] = value
  }
  return {
    _tag: "Upsert",
    upsert: {
      email,
      name: contactName(traits),
      action: rule.action === "consent" ? actionFor(consent) : rule.action,
      explicit: rule.action !== "consent",
      properties
    }
  }
}

/** The `managecontact` body: `Name` and `Properties` only when they have content. */
export const requestBody = (
  upsert: { readonly email: string; readonly name: string | undefined; readonly action: Action },
  properties: Readonly<Record<string, unknown>>
): Record<string, unknown> => {
  const body: Record<string, unknown> = { Email: upsert.email }
  if (upsert.name !== undefined && upsert.name !== "") body["Name"] = upsert.name
  body["Action"] = upsert.action
  // Any own key, without an array of them all: this runs for every event.
  for (const key in properties) {
    if (Object.hasOwn(properties, key)) {
      body["Properties"] = properties
      break
    }
  }
  return body
}

export class Mapping extends Context.Tag("signal-mailjet/Mapping")<Mapping, {
  readonly preset: Preset
  readonly map: (event: SignalEvent, consent: ConsentState) => Mapped
}>() {
  static readonly make = (preset: Preset = DefaultPreset): Context.Tag.Service<Mapping> => ({
    preset,
    map: (event, consent) => mapEvent(preset, event, consent)
  })

  static readonly layerPreset = (preset: Preset) => Layer.succeed(Mapping, Mapping.make(preset))

  /** The preset file at `path` (the CLI's `--preset`), else `MAILJET_PRESET`, else the Default preset. */
  static readonly layer = (path: Option.Option<string> = Option.none()) =>
    Layer.effect(
      Mapping,
      Effect.gen(function*() {
        const file = Option.isSome(path) ? path : yield* Config.option(Config.nonEmptyString("MAILJET_PRESET"))
        const preset = Option.isSome(file) ? yield* loadPreset(file.value) : DefaultPreset
        return Mapping.make(preset)
      })
    )
}
