/**
 * The fold's law: for any sequence of updates to one contact, applying the folded update once to
 * the simulator's account leaves the same contact (name, properties, subscription) as applying the
 * sequence in order, from any starting state of the contact, `remove` included.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { foldAction, foldUpdates } from "../src/Delivery/Fold.js"
import type { ManageContactBody } from "../src/Mailjet/MailjetClient.js"
import { makeFaults } from "../src/Simulator/Faults.js"
import { makeRoutes } from "../src/Simulator/Routes.js"
import { makeState } from "../src/Simulator/State.js"
import { parseQuery, readBody } from "../src/Simulator/Validation.js"

const PROPERTIES = [
  { name: "p_str", datatype: "str" },
  { name: "p_int", datatype: "int" },
  { name: "p_bool", datatype: "bool" }
] as const

const Action = Schema.Literal("addforce", "addnoforce", "unsub", "remove")
const Update = Schema.Struct({
  Name: Schema.optional(Schema.Literal("Ada", "Bo", "Cy")),
  Action,
  Properties: Schema.optional(Schema.Struct({
    p_str: Schema.optional(Schema.NullOr(Schema.Literal("", "a", "b"))),
    p_int: Schema.optional(Schema.NullOr(Schema.Literal(0, 1, 7))),
    p_bool: Schema.optional(Schema.NullOr(Schema.Boolean))
  }))
})
/** Where the contact starts: unknown, or known with a membership reached by this action. */
const Start = Schema.Literal("none", "addforce", "unsub", "remove")

const EMAIL = "ada@example.com"

const account = (start: typeof Start.Type) => {
  const state = makeState({ lists: [{ id: 1, name: "L" }], properties: PROPERTIES, recordLimit: 1, recordRequests: false })
  const route = makeRoutes(state, makeFaults({}, 1))
  let now = 1_700_000_000_000
  const send = (body: ManageContactBody) => {
    const out = route("POST", ["contactslist", "1", "managecontact"], parseQuery(""), readBody(JSON.stringify(body)), now++)
    expect(out._tag === "Reply" ? out.status : 0).toBe(201)
  }
  if (start !== "none") send({ Email: EMAIL, Name: "Start", Action: start, Properties: { p_str: "s", p_int: 3 } })
  const contact = () => {
    const c = state.contactByEmail(EMAIL)
    return c === undefined ? undefined : { name: c.name, properties: Object.fromEntries(c.properties), lists: [...c.lists].map(([id, r]) => [id, r.status]) }
  }
  return { send, contact }
}

describe("Fold", () => {
  it.prop(
    "law: the folded update applied once ≡ the updates applied in order (contact, properties, subscription)",
    { start: Start, updates: Schema.NonEmptyArray(Update) },
    ({ start, updates }) => {
      const bodies: Array<ManageContactBody> = updates.map((u) => ({ Email: EMAIL, ...u }) as ManageContactBody)
      const inOrder = account(start)
      for (const b of bodies) inOrder.send(b)
      const folded = account(start)
      folded.send(foldUpdates(bodies))
      expect(folded.contact()).toEqual(inOrder.contact())
    },
    { fastCheck: { numRuns: 1000 } }
  )

  it("names the cases the issue names", () => {
    expect(foldAction("unsub", "addnoforce")).toBe("unsub")
    expect(foldAction("unsub", "addforce")).toBe("addforce")
    expect(foldAction("remove", "addnoforce")).toBe("addforce")
    expect(foldUpdates([
      { Email: EMAIL, Action: "addnoforce", Properties: { a: true, b: 1 } },
      { Email: EMAIL, Name: "Ada", Action: "addnoforce", Properties: { a: false, b: 0 } }
    ])).toEqual({ Email: EMAIL, Name: "Ada", Action: "addnoforce", Properties: { a: false, b: 0 } })
  })
})
