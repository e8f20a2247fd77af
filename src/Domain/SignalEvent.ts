/**
 * The event Signal delivers (Signal's event contract, README). Unknown fields are tolerated and ignored:
 * Signal's schema grows over time.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { formatParseError } from "../internal/schemaError.js"

const Fields = Schema.Record({ key: Schema.String, value: Schema.Unknown })
const nullableFields = Schema.optionalWith(Fields, { nullable: true })

/** `delete` is Segment's deletion request (the Default preset erases the contact). */
export const EventType = Schema.Literal("track", "identify", "page", "screen", "group", "alias", "delete")
export type EventType = typeof EventType.Type

export const EventContext = Schema.Struct({
  traits: nullableFields,
  consent: nullableFields
})

export const SignalEvent = Schema.Struct({
  type: EventType,
  event: Schema.optionalWith(Schema.String, { nullable: true }),
  name: Schema.optionalWith(Schema.String, { nullable: true }),
  messageId: Schema.optionalWith(Schema.String, { nullable: true }),
  timestamp: Schema.optionalWith(Schema.String, { nullable: true }),
  userId: Schema.optional(Schema.NullOr(Schema.String)),
  user_id: Schema.optional(Schema.NullOr(Schema.String)),
  anonymousId: Schema.optionalWith(Schema.String, { nullable: true }),
  anonymous_id: Schema.optionalWith(Schema.String, { nullable: true }),
  traits: nullableFields,
  properties: nullableFields,
  context: Schema.optionalWith(EventContext, { nullable: true })
}).annotations({ identifier: "SignalEvent" })
export type SignalEvent = typeof SignalEvent.Type

const decode = Schema.decodeUnknownEither(SignalEvent, { errors: "first" })

const TYPES: ReadonlySet<unknown> = new Set(EventType.literals)
const has = Object.prototype.hasOwnProperty

/** An object `Schema.Record` reads as it is (it reads an array as an object too: left to it). */
const isRecord = (v: unknown): v is Readonly<Record<string, unknown>> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !has.call(v, "__proto__")

type Out = Record<string, unknown>
/** `optionalWith(String, { nullable: true })`: null is absent. False: not a string. */
const text = (out: Out, input: Readonly<Record<string, unknown>>, key: string): boolean => {
  const v = input[key]
  if (v === undefined || v === null) return true
  if (typeof v !== "string") return false
  out[key] = v
  return true
}
/** `optional(NullOr(String))`: null is kept. */
const nullOrText = (out: Out, input: Readonly<Record<string, unknown>>, key: string): boolean => {
  const v = input[key]
  if (v === undefined) return true
  if (v !== null && typeof v !== "string") return false
  out[key] = v
  return true
}
/** A nullable record of fields, copied as the Schema copies it. */
const fields = (out: Out, input: Readonly<Record<string, unknown>>, key: string): boolean => {
  const v = input[key]
  if (v === undefined || v === null) return true
  if (!isRecord(v)) return false
  out[key] = { ...v }
  return true
}

/**
 * The Schema's decoding of an ordinary event, by hand: every event is decoded, and the Schema's
 * parser was a tenth of what an event allocates (BENCHMARKS.md). It gives what the Schema gives,
 * or `undefined` for anything it does not pass (a wrong field, an array for a record): the Schema
 * then decodes it, and names what is wrong.
 */
export const checkSignalEvent = (input: unknown): SignalEvent | undefined => {
  if (!isRecord(input) || !TYPES.has(input["type"])) return undefined
  const out: Out = { type: input["type"] }
  const ok = text(out, input, "event") && text(out, input, "name") && text(out, input, "messageId") &&
    text(out, input, "timestamp") && nullOrText(out, input, "userId") && nullOrText(out, input, "user_id") &&
    text(out, input, "anonymousId") && text(out, input, "anonymous_id") && fields(out, input, "traits") &&
    fields(out, input, "properties")
  if (!ok) return undefined
  const c = input["context"]
  if (c !== undefined && c !== null) {
    if (!isRecord(c)) return undefined
    const context: Out = {}
    if (!fields(context, c, "traits") || !fields(context, c, "consent")) return undefined
    out["context"] = context
  }
  return out as SignalEvent
}

/**
 * Decodes one parsed JSON value; the Left is a one-line reason fit for an outcome line. It names
 * paths and expected types, never a value: any value of an event can be an email.
 */
export const decodeSignalEvent = (input: unknown): Either.Either<SignalEvent, string> => {
  const checked = checkSignalEvent(input)
  return checked !== undefined ? Either.right(checked) : Either.mapLeft(
    decode(input),
    (e) => `not a Signal event: ${formatParseError(e, { showValues: false, root: "the event" })}`
  )
}

/** One NDJSON line read: its JSON (the line itself when it is not JSON), and its event or why not. */
export const readSignalLine = (line: string): { readonly raw: unknown; readonly event: Either.Either<SignalEvent, string> } => {
  let raw: unknown
  try {
    raw = JSON.parse(line)
  } catch (e) {
    return { raw: line, event: Either.left(`not JSON: ${jsonProblem(e)}`) }
  }
  return { raw, event: decodeSignalEvent(raw) }
}

/**
 * V8's JSON.parse message without the excerpt of the input it quotes (`Unexpected token 'j',
 * "jane@exa"... is not valid JSON`): the excerpt can hold an email.
 */
export const jsonProblem = (e: unknown): string => {
  const message = e instanceof Error ? e.message : String(e)
  const cut = message.search(/, (?:\.\.\.)?"/)
  return (cut < 0 ? message : message.slice(0, cut)).slice(0, 120)
}

/** The event's name as an outcome line shows it: the track name, or the call type. */
export const eventLabel = (e: SignalEvent): string =>
  e.type === "track" ? e.event ?? "track" : e.type === "identify" ? "Identified" : e.type

/** Whatever the original carried as messageId, even when it did not decode. */
export const rawMessageId = (raw: unknown): string | undefined => {
  if (typeof raw === "object" && raw !== null && "messageId" in raw) {
    const id = (raw as { readonly messageId: unknown }).messageId
    return typeof id === "string" ? id : undefined
  }
  return undefined
}
