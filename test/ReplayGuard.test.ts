/**
 * The replay guard's laws, on a model of Mailjet's contact state (the simulator's rules for
 * managecontact). A contact's history is applied with random failures (the whole event, or one
 * property refused and dead-lettered alone), the dead letters are replayed through the guard at a
 * random point and again at the end, and the result is compared with the history applied in order
 * with no failure at all.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer, Option, Schema } from "effect"
import { guardReplay, LAST_EVENT_PROPERTY, SUBSCRIPTION, type ContactState } from "../src/Delivery/ReplayGuard.js"
import { type ManageContactBody, MailjetClient } from "../src/Mailjet/MailjetClient.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { clientLayer, KEY, SECRET } from "./support/layers.js"

type Membership = "subscribed" | "unsubscribed" | undefined

interface Model {
  exists: boolean
  membership: Membership
  changedAt: number | undefined
  properties: Record<string, string | number | boolean>
}

const empty = (): Model => ({ exists: false, membership: undefined, changedAt: undefined, properties: {} })

/** managecontact as the simulator applies it; `at` is Mailjet's clock. */
const apply = (m: Model, body: ManageContactBody, at: number, markerDefined: boolean) => {
  m.exists = true
  for (const [k, v] of Object.entries(body.Properties ?? {})) {
    if (k === LAST_EVENT_PROPERTY && !markerDefined) continue
    if (v !== null) m.properties[k] = v
  }
  const before = m.membership
  const after: Membership = body.Action === "addforce"
    ? "subscribed"
    : body.Action === "addnoforce"
    ? before ?? "subscribed"
    : body.Action === "unsub"
    ? "unsubscribed"
    : undefined
  if (after !== before) {
    m.membership = after
    // Mailjet keeps SubscribedAt/UnsubscribedAt on the list recipient, which a removal deletes.
    m.changedAt = after === undefined ? undefined : at
  }
}

const Step = Schema.Struct({
  action: Schema.Literal("addforce", "addnoforce", "unsub", "remove"),
  a: Schema.optional(Schema.Literal("x", "y")),
  b: Schema.optional(Schema.Boolean),
  fails: Schema.Literal("no", "no", "no", "whole", "property")
})

const History = Schema.Struct({
  steps: Schema.Array(Step).pipe(Schema.minItems(1), Schema.maxItems(8)),
  replayAt: Schema.Int.pipe(Schema.between(0, 8)),
  markerDefined: Schema.Boolean,
  // Mailjet applies a backfill long after the events happened, or a live stream right after.
  lateBy: Schema.Literal(0, 5, 100_000)
})

const run = ({ lateBy, markerDefined, replayAt, steps }: typeof History.Type) => {
  const bodies = steps.map((s, i): ManageContactBody => {
    const properties: Record<string, string | number | boolean> = { n: i }
    if (s.a !== undefined) properties["a"] = s.a
    if (s.b !== undefined) properties["b"] = s.b
    properties[LAST_EVENT_PROPERTY] = new Date(i * 10).toISOString()
    return { Email: "c@example.com", Action: s.action, Properties: properties }
  })
  const ordered = empty()
  bodies.forEach((b, i) => apply(ordered, b, i * 10 + lateBy, markerDefined))

  const actual = empty()
  let clock = 0
  const at = (i: number) => Math.max(clock += 1, i * 10 + lateBy)
  const dead: Array<{ readonly i: number; readonly only: boolean; readonly body: ManageContactBody }> = []
  const superseded = new Set<string>()
  const replay = () => {
    for (const d of dead.splice(0)) {
      const state: ContactState = { exists: actual.exists, membership: actual.membership, properties: { ...actual.properties } }
      const g = guardReplay(d.body, d.i * 10, state, d.only)
      g.superseded.forEach((s) => superseded.add(s))
      if (g._tag === "Send") apply(actual, g.body, at(d.i), markerDefined)
    }
  }
  steps.forEach((s, i) => {
    if (i === replayAt) replay()
    const body = bodies[i]!
    if (s.fails === "whole") dead.push({ i, only: false, body })
    else if (s.fails === "property" && body.Properties?.["b"] !== undefined) {
      // Mailjet refused b alone: the rest lands now, b is replayed on its own with addnoforce.
      const { b, ...rest } = body.Properties
      apply(actual, { ...body, Properties: rest }, at(i), markerDefined)
      dead.push({ i, only: true, body: { Email: body.Email, Action: "addnoforce", Properties: { b } } })
    } else apply(actual, body, at(i), markerDefined)
  })
  replay()
  return { actual, ordered, superseded }
}

describe("replay guard", () => {
  it.prop(
    "never re-subscribes: a contact ends subscribed only if its events in order end subscribed",
    [History],
    ([h]) => {
      const { actual, ordered } = run(h)
      if (actual.membership === "subscribed") expect(ordered.membership).toBe("subscribed")
    },
    { fastCheck: { numRuns: 400 } }
  )

  it.prop(
    "the subscription ends as the events in order give it, or the replay said it was superseded",
    [History],
    ([h]) => {
      const { actual, ordered, superseded } = run(h)
      if (actual.membership !== ordered.membership) expect([...superseded]).toContain(SUBSCRIPTION)
    },
    { fastCheck: { numRuns: 400 } }
  )

  it.prop(
    "every property ends as the events in order give it, or the replay named it superseded",
    [History],
    ([h]) => {
      const { actual, ordered, superseded } = run(h)
      for (const name of ["a", "b", "n"]) {
        if (actual.properties[name] !== ordered.properties[name]) expect([...superseded]).toContain(name)
      }
    },
    { fastCheck: { numRuns: 400 } }
  )

  it.prop(
    "with the marker defined and nothing failed, nothing is superseded (the guard is exact)",
    [History],
    ([h]) => {
      const { actual, ordered, superseded } = run({ ...h, markerDefined: true, steps: h.steps.map((s) => ({ ...s, fails: "no" as const })) })
      expect(superseded.size).toBe(0)
      expect([actual.membership, actual.properties]).toStrictEqual([ordered.membership, ordered.properties])
    }
  )
})

/**
 * The same laws with Mailjet's side played by the simulator over real HTTP, through the client:
 * the guard reads what the simulator holds (listrecipient, contactdata), and the history applied
 * in order goes to a twin contact of the same simulator. `signal_last_event_at` is defined.
 */
const numbered = (email: string, s: typeof Step.Type, i: number): ManageContactBody => {
  const properties: Record<string, string | number | boolean> = { n: i }
  if (s.a !== undefined) properties["a"] = s.a
  if (s.b !== undefined) properties["b"] = s.b
  properties[LAST_EVENT_PROPERTY] = new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString().replace(/\.000Z$/, "Z")
  return { Email: email, Action: s.action, Properties: properties }
}

layer(
  Simulator.layer({
    apiKey: KEY,
    secretKey: SECRET,
    lists: [{ id: 1, name: "Signal" }],
    properties: [
      { name: "n", datatype: "int" },
      { name: "a", datatype: "str" },
      { name: "b", datatype: "bool" },
      { name: LAST_EVENT_PROPERTY, datatype: "datetime" }
    ]
  }),
  { excludeTestServices: true }
)("replay guard against the simulator", (it) => {
  let seq = 0
  it.effect.prop(
    "never re-subscribes, and every part that ends unlike the history in order was named superseded",
    { h: History },
    ({ h }) =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        const client = yield* MailjetClient
        const id = seq++
        const actual = `actual${id}@example.com`
        const twin = `ordered${id}@example.com`
        for (const [i, s] of h.steps.entries()) yield* client.manageContact(numbered(twin, s, i))
        const dead: Array<{ readonly i: number; readonly only: boolean; readonly body: ManageContactBody }> = []
        const superseded = new Set<string>()
        const replay = Effect.gen(function*() {
          for (const d of dead.splice(0)) {
            const g = guardReplay(d.body, Date.UTC(2026, 0, 1) + d.i * 60_000, yield* client.contactState(actual), d.only)
            g.superseded.forEach((s) => superseded.add(s))
            if (g._tag === "Send") yield* client.manageContact(g.body)
          }
        })
        for (const [i, s] of h.steps.entries()) {
          if (i === h.replayAt) yield* replay
          const body = numbered(actual, s, i)
          if (s.fails === "whole") dead.push({ i, only: false, body })
          else if (s.fails === "property" && body.Properties?.["b"] !== undefined) {
            const { b, ...rest } = body.Properties
            yield* client.manageContact({ ...body, Properties: rest })
            dead.push({ i, only: true, body: { Email: actual, Action: "addnoforce", Properties: { b } } })
          } else yield* client.manageContact(body)
        }
        yield* replay
        const of = (email: string) =>
          Effect.map(sim.contact(email), (c) => ({
            membership: Option.match(c, { onNone: () => undefined, onSome: (x) => x.lists.get(1) }),
            properties: Option.match(c, { onNone: (): Readonly<Record<string, unknown>> => ({}), onSome: (x) => x.properties })
          }))
        const [got, want] = [yield* of(actual), yield* of(twin)]
        if (got.membership === "subscribed") expect(want.membership).toBe("subscribed")
        if (got.membership !== want.membership) expect([...superseded]).toContain(SUBSCRIPTION)
        for (const name of ["a", "b", "n"]) {
          if (got.properties[name] !== want.properties[name]) expect([...superseded]).toContain(name)
        }
      }).pipe(Effect.provide(Layer.unwrapEffect(Effect.map(Simulator.Simulator, (sim) => clientLayer(sim.url))))),
    { fastCheck: { numRuns: 400 } }
  )
})
