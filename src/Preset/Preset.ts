/**
 * Which Signal events become which Mailjet contact updates. The Default preset is the table in
 * the README's "The Default preset"; a JSON preset file can extend it (the default) or replace it.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { formatParseError } from "../internal/schemaError.js"
import { coerceValue, Datatype } from "./Datatypes.js"

export { Datatype }

export const Action = Schema.Literal("addforce", "addnoforce", "unsub", "remove")
export type Action = typeof Action.Type

/**
 * `consent` follows the event's consent; a fixed action overrides it. `erase` is a GDPR deletion
 * request: the contact is erased in Mailjet, and older events never bring it back (Tombstones).
 */
export const ActionRule = Schema.Literal("consent", "addforce", "addnoforce", "unsub", "remove", "erase")
export type ActionRule = typeof ActionRule.Type

const Scalar = Schema.Union(Schema.String, Schema.Number, Schema.Boolean)

/** A dotted path, the first of several paths that has a value, or a static value. */
export const Source = Schema.Union(
  Schema.String,
  Schema.NonEmptyArray(Schema.String),
  Schema.Struct({ value: Scalar })
)
export type Source = typeof Source.Type

export const EventRule = Schema.Struct({
  action: Schema.optionalWith(ActionRule, { default: () => "consent" as const }),
  properties: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Source }), { default: () => ({}) })
})

/** The preset file's format. An event set to `null` removes it from the preset it extends. */
export const PresetFile = Schema.Struct({
  extends: Schema.optionalWith(Schema.Literal("default", "none"), { default: () => "default" as const }),
  properties: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Datatype }), { default: () => ({}) }),
  events: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.NullOr(EventRule) }), {
    default: () => ({})
  })
}).annotations({ identifier: "PresetFile" })
export type PresetFile = typeof PresetFile.Encoded

export interface EventMapping {
  /** The name as the preset spells it. */
  readonly name: string
  readonly action: ActionRule
  readonly properties: ReadonlyArray<readonly [property: string, source: Source]>
}

export interface Preset {
  /** Keyed by canonical event name. */
  readonly events: ReadonlyMap<string, EventMapping>
  /** The datatype of every property the preset can write. */
  readonly datatypes: ReadonlyMap<string, Datatype>
}

const canonicalNames = new Map<string, string>()
/**
 * `"Signed Up"`, `"signed_up"` and `"signed-up"` are the same event. Kept for the names seen (a
 * few, read for every event twice: a lower-casing and a Unicode replace each time): short names
 * only, a few hundred at most, each kept as a copy (a name parsed from a line can be a slice that
 * holds the whole chunk of input it was read in).
 */
export const canonicalEventName = (name: string): string => {
  let key = canonicalNames.get(name)
  if (key === undefined) {
    key = name.toLowerCase().replace(/[^\p{L}\p{N}]/gu, "")
    if (name.length > 128) return key
    if (canonicalNames.size >= 256) canonicalNames.clear()
    // Flattened into a string of its own, so nothing else is held (and its key likewise).
    canonicalNames.set(` ${name}`.slice(1), ` ${key}`.slice(1))
  }
  return key
}

/** Where a source path may start: the merged traits, or a field of the event. */
export const SOURCE_ROOTS = [
  "traits",
  "properties",
  "context.traits",
  "userId",
  "anonymousId",
  "messageId",
  "timestamp",
  "event",
  "name"
] as const

export class PresetInvalid extends Data.TaggedError("PresetInvalid")<{
  readonly source: string
  readonly problem: string
}> {
  override get message(): string {
    return `Invalid preset ${this.source}: ${this.problem}. See "Presets" in the README for the format.`
  }
}

const name = ["traits.first_name", "traits.firstName"] as const
const surname = ["traits.last_name", "traits.lastName"] as const
const names = { first_name: name, last_name: surname }

export const DEFAULT_PRESET_FILE = {
  extends: "none",
  properties: {
    first_name: "str",
    last_name: "str",
    signup_method: "str",
    last_order_value: "float",
    last_order_currency: "str"
  },
  events: {
    "Signed Up": { action: "consent", properties: { ...names, signup_method: "properties.method" } },
    Identified: { action: "consent", properties: names },
    "Order Completed": {
      action: "consent",
      properties: {
        ...names,
        last_order_value: ["properties.revenue", "properties.total", "properties.value"],
        last_order_currency: "properties.currency"
      }
    },
    Subscribed: { action: "addforce", properties: names },
    Unsubscribed: { action: "unsub", properties: names },
    // Segment-style `type: "delete"` calls are this event too (Mapping.eventKey).
    "Deletion Requested": { action: "erase" }
  }
} as const satisfies PresetFile

const validPath = (path: string): boolean =>
  SOURCE_ROOTS.some((root) => path === root || path.startsWith(`${root}.`)) && !path.split(".").includes("")

const sourcePaths = (source: Source): ReadonlyArray<string> =>
  typeof source === "string" ? [source] : Array.isArray(source) ? source : []

/** Merges a decoded file over its base and checks what the schema cannot. */
export const compilePreset = (
  file: typeof PresetFile.Type,
  base: Preset | undefined,
  source: string
): Either.Either<Preset, PresetInvalid> => {
  const fail = (problem: string) => Either.left(new PresetInvalid({ source, problem }))
  const events = new Map(file.extends === "default" && base ? base.events : [])
  const datatypes = new Map(file.extends === "default" && base ? base.datatypes : [])
  for (const [property, datatype] of Object.entries(file.properties)) {
    if (property.trim() === "") return fail("a property name is empty")
    datatypes.set(property, datatype)
  }
  const seen = new Map<string, string>()
  for (const [eventName, rule] of Object.entries(file.events)) {
    const key = canonicalEventName(eventName)
    if (key === "") return fail(`event name "${eventName}" has no letters or digits`)
    const clash = seen.get(key)
    if (clash !== undefined) return fail(`events "${clash}" and "${eventName}" are the same event once canonicalised`)
    seen.set(key, eventName)
    if (rule === null) {
      events.delete(key)
      continue
    }
    if (rule.action === "erase" && Object.keys(rule.properties).length > 0) {
      return fail(`event "${eventName}" erases the contact, so it writes no properties: remove its "properties"`)
    }
    for (const [property, src] of Object.entries(rule.properties)) {
      if (!datatypes.has(property)) {
        return fail(
          `event "${eventName}" writes property "${property}" whose datatype is not declared: add "${property}": "str" (or int, float, bool, datetime) under "properties"`
        )
      }
      const bad = sourcePaths(src).find((p) => !validPath(p))
      if (bad !== undefined) {
        return fail(
          `event "${eventName}", property "${property}": source path "${bad}" must start with one of ${SOURCE_ROOTS.join(", ")}`
        )
      }
      // a static value that cannot fit would fail every event at delivery: say so now
      if (typeof src === "object" && !Array.isArray(src)) {
        const fitted = coerceValue(datatypes.get(property)!, (src as { readonly value: unknown }).value)
        if (Either.isLeft(fitted)) {
          return fail(`event "${eventName}", property "${property}": the static value ${fitted.left}`)
        }
      }
    }
    events.set(key, { name: eventName, action: rule.action, properties: Object.entries(rule.properties) })
  }
  return Either.right({ events, datatypes })
}

const decodeFile = Schema.decodeUnknownEither(PresetFile, { onExcessProperty: "error" })

/** Parses preset JSON text. `source` names it in errors (a file path). */
export const parsePreset = (text: string, source: string): Either.Either<Preset, PresetInvalid> => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return Either.left(new PresetInvalid({ source, problem: `not JSON: ${e instanceof Error ? e.message : String(e)}` }))
  }
  return Either.flatMap(
    Either.mapLeft(decodeFile(json), (e) =>
      new PresetInvalid({
        source,
        problem: formatParseError(e, { showValues: true, root: "the preset" })
      })),
    (file) => compilePreset(file, DefaultPreset, source)
  )
}

export const DefaultPreset: Preset = Either.getOrThrow(
  compilePreset(Schema.decodeUnknownSync(PresetFile)(DEFAULT_PRESET_FILE), undefined, "Default")
)

/** Reads a preset file; a missing or unreadable file is a `PresetInvalid` too, naming the path. */
export const loadPreset = (path: string): Effect.Effect<Preset, PresetInvalid, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path).pipe(
      Effect.mapError((e) => new PresetInvalid({ source: path, problem: `cannot be read (${e.message})` }))
    )
    return yield* parsePreset(text, path)
  })
