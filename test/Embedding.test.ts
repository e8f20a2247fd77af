/**
 * A host program as the README shows it: its own configuration source, the library's layers,
 * and the seed event.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option } from "effect"
import { DefaultPreset, Delivery, type DeliveryOptions, Simulator, Suppressions } from "../src/index.js"
import { SEED_BODY, SEED_EVENT } from "./support/seed.js"

/** The host's layer, as in the README, with the secret it was configured with (and options, and more settings). */
const hostLayer = (url: string, secret: string, options: DeliveryOptions = {}, env: Record<string, string> = {}) =>
  Delivery.live(options).pipe(
    Layer.provide(NodeFileSystem.layer),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({
      MAILJET_API_KEY: "host-key",
      MAILJET_SECRET_KEY: secret,
      MAILJET_LIST_ID: "42",
      MAILJET_BASE_URL: url,
      ...env
    })))
  )

it.live("a host composes Delivery.live with its own ConfigProvider and delivers the seed", () =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    // The layer is built (preflight read Mailjet) before the host's program runs: it counts those reads.
    const [outcome, before] = yield* Effect.flatMap(Delivery, (d) =>
      Effect.flatMap(sim.requests, (preflight) => Effect.map(d.deliver(SEED_EVENT), (outcome) => [outcome, preflight.length] as const))
    ).pipe(Effect.provide(hostLayer(sim.url, "host-secret")))
    expect(outcome).toEqual({ outcome: "delivered", action: "addforce", status: 201, attempts: 1 })
    const requests = (yield* sim.requests).slice(before)
    expect(requests).toHaveLength(1)
    expect(requests[0]!.path).toBe("/v3/REST/contactslist/42/managecontact")
    expect(requests[0]!.body).toEqual(SEED_BODY)
    const contact = yield* sim.contact("jane.doe@example.com")
    expect(Option.map(contact, (c) => c.lists.get(42))).toEqual(Option.some("subscribed"))
    // Before it, preflight read as `deliver`'s does: the list, its properties, its unsubscribed contacts.
    expect((yield* sim.requests).slice(0, before).map((r) => `${r.method} ${r.path.split("?")[0]}`)).toEqual([
      "GET /v3/REST/contactslist/42",
      "GET /v3/REST/contactmetadata",
      "GET /v3/REST/listrecipient"
    ])
  }).pipe(
    Effect.provide(Simulator.layer({
      apiKey: "host-key",
      secretKey: "host-secret",
      lists: [{ id: 42, name: "Newsletter" }],
      properties: [
        { name: "first_name", datatype: "str" },
        { name: "last_name", datatype: "str" },
        { name: "signup_method", datatype: "str" }
      ]
    }))
  ))

it.live("a fatal error reaches the host as a typed failure with the fix in its message", () =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    const error = yield* Effect.flatMap(Delivery, (d) => d.deliver(SEED_EVENT)).pipe(
      Effect.provide(hostLayer(sim.url, "wrong-secret")),
      Effect.flip
    )
    expect(error._tag).toBe("Unauthorized")
    expect(error.message).toMatch(/MAILJET_API_KEY and MAILJET_SECRET_KEY/)
  }).pipe(Effect.provide(Simulator.layer({ apiKey: "host-key", secretKey: "host-secret", lists: [{ id: 42, name: "N" }] }))))

/** Lee, who consents to marketing. */
const lee = (event: string, properties: Record<string, unknown> = {}) => ({
  type: "track",
  event,
  messageId: `lee-${event}`,
  properties,
  context: { traits: { email: "lee@example.com", first_name: "Lee" }, consent: { marketing: true } }
})

/** One event through a layer built for it: preflight reads Mailjet again, as when the host starts. */
const deliverOnce = (sim: Simulator.SimulatorService, event: unknown, options: DeliveryOptions = {}, env: Record<string, string> = {}) =>
  Effect.flatMap(Delivery, (d) => d.deliver(event)).pipe(Effect.provide(hostLayer(sim.url, "host-secret", options, env)))

/** Mailjet's own API, as the host's account: the recipient's unsubscribe link, and the list's subscriber count. */
const mailjet = (sim: Simulator.SimulatorService, method: string, path: string, body?: unknown) =>
  Effect.promise(async () => {
    const res = await fetch(`${sim.url}${path}`, {
      method,
      headers: { authorization: `Basic ${Buffer.from("host-key:host-secret").toString("base64")}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    return { status: res.status, json: await res.json() as { Data: ReadonlyArray<Record<string, unknown>> } }
  })
const subscribers = (sim: Simulator.SimulatorService) =>
  Effect.map(mailjet(sim, "GET", "/v3/REST/contactslist/42"), (r) => r.json.Data[0]!["SubscriberCount"])
const leeIn42 = (sim: Simulator.SimulatorService) =>
  Effect.map(sim.contact("lee@example.com"), Option.flatMap((c) => Option.fromNullable(c.lists.get(42))))

const everyProperty = Simulator.layer({
  apiKey: "host-key",
  secretKey: "host-secret",
  lists: [{ id: 42, name: "Newsletter" }],
  properties: Array.from(DefaultPreset.datatypes, ([name, datatype]) => ({ name, datatype }))
})

it.live("the default is safe: signed up, unsubscribed in Mailjet, then an Order Completed with consent leaves the contact unsubscribed, and says it was demoted", () =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    expect(yield* deliverOnce(sim, lee("Signed Up", { method: "email" }))).toMatchObject({ outcome: "delivered", action: "addforce" })
    expect(yield* subscribers(sim)).toBe(1)
    // The recipient follows the unsubscribe link in a Mailjet email.
    expect((yield* mailjet(sim, "POST", "/_sim/recipient/unsub", { Email: "lee@example.com" })).status).toBe(200)
    expect(yield* subscribers(sim)).toBe(0)

    const order = yield* deliverOnce(sim, lee("Order Completed", { revenue: 20, currency: "EUR" }))
    expect(order).toMatchObject({ outcome: "delivered", action: "addnoforce", demoted: expect.stringMatching(/^unsubscribed in Mailjet/) })
    expect(yield* leeIn42(sim)).toEqual(Option.some("unsubscribed"))
    expect(yield* subscribers(sim)).toBe(0)
  }).pipe(Effect.provide(everyProperty)))

it.live("a long-running host tells the layer of a later unsubscribe (Mailjet's callback) through Suppressions: the next standing consent is demoted", () =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    const order = yield* Effect.gen(function*() {
      const delivery = yield* Delivery
      yield* delivery.deliver(lee("Signed Up", { method: "email" }))
      yield* mailjet(sim, "POST", "/_sim/recipient/unsub", { Email: "lee@example.com" })
      // What the host's webhook does with Mailjet's `unsub` event.
      ;(yield* Suppressions).learn("lee@example.com", { reason: "unsubscribed in Mailjet (callback)" })
      return yield* delivery.deliver(lee("Order Completed", { revenue: 20, currency: "EUR" }))
    }).pipe(Effect.provide(hostLayer(sim.url, "host-secret")))
    expect(order).toMatchObject({ outcome: "delivered", action: "addnoforce", demoted: "unsubscribed in Mailjet (callback)" })
    expect(yield* subscribers(sim)).toBe(0)
  }).pipe(Effect.provide(everyProperty)))

it.live("skipping preflight is explicit and named for its risk: nothing is read, and the same Order Completed re-subscribes", () =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    const risky = { preflight: "skip-and-risk-resubscribing" } as const
    yield* deliverOnce(sim, lee("Signed Up", { method: "email" }), risky)
    yield* mailjet(sim, "POST", "/_sim/recipient/unsub", { Email: "lee@example.com" })
    const before = (yield* sim.requests).length
    const order = yield* deliverOnce(sim, lee("Order Completed", { revenue: 20, currency: "EUR" }), risky)
    expect((yield* sim.requests).slice(before).map((r) => r.method)).toEqual(["POST"])
    expect(order).toMatchObject({ outcome: "delivered", action: "addforce" })
    expect(order).not.toHaveProperty("demoted")
    expect(yield* leeIn42(sim)).toEqual(Option.some("subscribed"))
    expect(yield* subscribers(sim)).toBe(1)
  }).pipe(Effect.provide(everyProperty)))

it.live("missing properties: sent without them by default, each outcome naming them; `fail` (option or MAILJET_MISSING_PROPERTIES) stops the layer before anything is sent", () =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    const order = yield* deliverOnce(sim, lee("Order Completed", { revenue: 20, currency: "EUR" }))
    expect(order).toMatchObject({
      outcome: "delivered",
      partial: { error: "PropertyMissing", properties: ["last_order_value", "last_order_currency"] }
    })
    expect(Option.map(yield* sim.contact("lee@example.com"), (c) => c.properties)).toEqual(Option.some({ first_name: "Lee" }))

    yield* sim.reset
    for (const [options, env] of [[{ missingProperties: "fail" }, {}], [{}, { MAILJET_MISSING_PROPERTIES: "fail" }]] as const) {
      const error = yield* Effect.flip(deliverOnce(sim, lee("Order Completed", { revenue: 20 }), options, env))
      expect(error._tag).toBe("PropertiesMissing")
      expect(error.message).toContain("last_order_value (float), last_order_currency (str)")
    }
    expect((yield* sim.requests).filter((r) => r.method !== "GET")).toEqual([])
  }).pipe(Effect.provide(Simulator.layer({
    apiKey: "host-key",
    secretKey: "host-secret",
    lists: [{ id: 42, name: "Newsletter" }],
    properties: [{ name: "first_name", datatype: "str" }, { name: "last_name", datatype: "str" }]
  }))))
