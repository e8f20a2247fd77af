/**
 * The hand-written check of managecontact's reply (the one reply every event gets) against the
 * Schema it stands in for: it may leave a reply to the Schema, never read one differently.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { checkManaged, ManagedEnvelope } from "../src/Mailjet/MailjetShapes.js"

/** A valid envelope, and one flaw to put in it (or none): each field of the reply, wrong in turn. */
const Scalar = Schema.Union(Schema.Number.pipe(Schema.finite()), Schema.String, Schema.Boolean, Schema.Null)
const Case = Schema.Struct({
  Count: Schema.Int,
  Data: Schema.Array(Schema.Struct({ ContactID: Schema.optional(Schema.Int), Name: Schema.optional(Schema.String) })),
  Total: Schema.Int,
  flaw: Schema.Literal("none", "Count", "Total", "Data", "item", "ContactID", "array item", "whole"),
  at: Schema.Int.pipe(Schema.between(0, 5)),
  value: Scalar
})

/** The case's envelope with its flaw: a field replaced by `value` (or dropped, for `null` on a field). */
const replyOf = ({ Count, Data, Total, at, flaw, value }: typeof Case.Type): unknown => {
  const env: Record<string, unknown> = { Count, Data: Data.map((d) => ({ ...d })), Total }
  const items = env["Data"] as Array<unknown>
  const i = items.length === 0 ? 0 : at % items.length
  switch (flaw) {
    case "none":
      return env
    case "Count":
    case "Total":
    case "Data":
      if (value === null) delete env[flaw]
      else env[flaw] = value
      return env
    case "item":
      items[i] = value
      return env
    case "ContactID":
      items[i] = { ...(items[i] as object), ContactID: value }
      return env
    case "array item":
      items[i] = []
      return env
    case "whole":
      return at % 2 === 0 ? value : [env]
  }
}
const decode = Schema.decodeUnknownEither(ManagedEnvelope)
const ids = (env: typeof ManagedEnvelope.Type) => ({ Count: env.Count, Total: env.Total, ids: env.Data.map((d) => d.ContactID) })

describe("checkManaged", () => {
  it("passes managecontact's usual 201 reply as it is", () => {
    const reply = JSON.parse(`{"Count":1,"Data":[{"ContactID":1234}],"Total":1}`)
    expect(checkManaged(reply)).toBe(reply)
    expect(checkManaged(JSON.parse(`{"Count":0,"Data":[],"Total":0}`))?.Data).toStrictEqual([])
  })

  it.prop(
    "law: the hand check passes exactly the replies the Schema accepts whose items are objects, with the same fields",
    { c: Case },
    ({ c }) => {
      const json: unknown = JSON.parse(JSON.stringify(replyOf(c)))
      const checked = checkManaged(json)
      const decoded = decode(json)
      if (checked !== undefined) {
        expect(Either.isRight(decoded)).toBe(true)
        if (Either.isRight(decoded)) expect(ids(checked)).toStrictEqual(ids(decoded.right))
      } else if (Either.isRight(decoded)) {
        // Left to the Schema only when an item is not an object (the Schema reads an array as one).
        expect(decoded.right.Data.length).toBeGreaterThan(0)
        expect((json as { Data: Array<unknown> }).Data.some((d) => Array.isArray(d))).toBe(true)
      }
    },
    { fastCheck: { numRuns: 500 } }
  )
})
