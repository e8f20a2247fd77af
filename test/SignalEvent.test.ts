/**
 * The hand-written decoding of an ordinary Signal event against the Schema it stands in for: it
 * may leave an event to the Schema, never decode one differently.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { checkSignalEvent, decodeSignalEvent, SignalEvent } from "../src/Domain/SignalEvent.js"
import { LooseEvent } from "./arbitraries.js"

const FIELDS = [
  "type", "event", "name", "messageId", "timestamp", "userId", "user_id", "anonymousId", "anonymous_id",
  "traits", "properties", "context", "context.traits", "context.consent"
] as const

/** A decodable event, and one field (or the whole) replaced by a value of any JSON kind, or none. */
const Case = Schema.Struct({
  event: LooseEvent,
  flaw: Schema.Literal("none", "whole", ...FIELDS),
  value: Schema.Union(
    Schema.String,
    Schema.Number.pipe(Schema.finite()),
    Schema.Boolean,
    Schema.Null,
    Schema.Array(Schema.String),
    Schema.Record({ key: Schema.String, value: Schema.String })
  )
})

const withFlaw = ({ event, flaw, value }: typeof Case.Type): unknown => {
  const e: Record<string, unknown> = JSON.parse(JSON.stringify(event))
  if (flaw === "none") return e
  if (flaw === "whole") return value
  if (flaw.startsWith("context.")) {
    const context = typeof e["context"] === "object" && e["context"] !== null ? e["context"] as Record<string, unknown> : {}
    context[flaw.slice("context.".length)] = value
    e["context"] = context
  } else e[flaw] = value
  return e
}

const decode = Schema.decodeUnknownEither(SignalEvent)
/** What the hand decoding leaves to the Schema: an array for a record, or a record with an own `__proto__` key (copying it by hand would set a prototype). */
const isArray = (v: unknown) =>
  Array.isArray(v) || (typeof v === "object" && v !== null && Object.prototype.hasOwnProperty.call(v, "__proto__"))

describe("checkSignalEvent", () => {
  it.prop(
    "law: the hand decoding gives what the Schema gives, and leaves it only events with an array or an own __proto__ key for a record",
    { c: Case },
    ({ c }) => {
      const json: unknown = JSON.parse(JSON.stringify(withFlaw(c)) ?? "null")
      const checked = checkSignalEvent(json)
      const decoded = decode(json)
      if (checked !== undefined) {
        expect(decoded).toStrictEqual(Either.right(checked))
      } else if (Either.isRight(decoded)) {
        const e = json as Record<string, unknown>
        const context = e["context"] as Record<string, unknown> | undefined
        expect(
          isArray(e) || isArray(e["traits"]) || isArray(e["properties"]) || isArray(context) ||
            isArray(context?.["traits"]) || isArray(context?.["consent"])
        ).toBe(true)
      }
      // What callers get: the same event, or the Schema's reason.
      expect(Either.isRight(decodeSignalEvent(json))).toBe(Either.isRight(decoded))
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it("decodes an ordinary event by hand, nulls absent as the Schema has them", () => {
    const raw = { type: "track", event: "Signed Up", userId: null, name: null, traits: { email: "a@b.example" }, extra: 1 }
    expect(checkSignalEvent(raw)).toStrictEqual({ type: "track", event: "Signed Up", userId: null, traits: { email: "a@b.example" } })
    expect(checkSignalEvent(raw)).toStrictEqual(Either.getOrThrow(decode(raw)))
  })
})
