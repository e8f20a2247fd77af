/**
 * A host program as the README shows it: its own configuration source, the library's layers,
 * and the seed event.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Option } from "effect"
import { Delivery, Simulator } from "../src/index.js"
import { SEED_BODY, SEED_EVENT } from "./support/seed.js"

/** The host's layer, as in the README, with the secret it was configured with. */
const hostLayer = (url: string, secret: string) =>
  Delivery.live().pipe(
    Layer.provide(NodeFileSystem.layer),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({
      MAILJET_API_KEY: "host-key",
      MAILJET_SECRET_KEY: secret,
      MAILJET_LIST_ID: "42",
      MAILJET_BASE_URL: url
    })))
  )

it.live("a host composes Delivery.live with its own ConfigProvider and delivers the seed", () =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    const outcome = yield* Effect.flatMap(Delivery, (d) => d.deliver(SEED_EVENT)).pipe(
      Effect.provide(hostLayer(sim.url, "host-secret"))
    )
    expect(outcome).toEqual({ outcome: "delivered", action: "addforce", status: 201, attempts: 1 })
    const requests = yield* sim.requests
    expect(requests).toHaveLength(1)
    expect(requests[0]!.path).toBe("/v3/REST/contactslist/42/managecontact")
    expect(requests[0]!.body).toEqual(SEED_BODY)
    const contact = yield* sim.contact("jane.doe@example.com")
    expect(Option.map(contact, (c) => c.lists.get(42))).toEqual(Option.some("subscribed"))
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
