/**
 * The Mailjet gateway against the simulator over real sockets: every call it makes takes a slot
 * (whichever way it is made and whatever Mailjet answers), a 429 slows the shared Pacer, a run's
 * stop interrupts a slot's wait (in virtual time), and failures in a row stop the run for an outage.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Either, Fiber, Layer, Option, Schema, TestServices } from "effect"
import { DeliveryConfig, defaults } from "../src/Delivery/DeliveryConfig.js"
import { type Lane, MailjetGateway, type RunHooks } from "../src/Mailjet/MailjetGateway.js"
import { Pacer } from "../src/Mailjet/Pacer.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { clientLayer, simulatorOptions } from "./support/layers.js"

/** A run that records why it stopped. */
const makeRun = Effect.gen(function*() {
  const stopped = yield* Deferred.make<string>()
  const hooks: RunHooks = {
    stopped: Deferred.poll(stopped).pipe(Effect.flatMap(Option.match({ onNone: () => Effect.succeedNone, onSome: Effect.asSome }))),
    onStop: Deferred.await(stopped),
    stop: (reason) => Effect.asVoid(Deferred.succeed(stopped, reason._tag === "Fatal" ? reason.error.message : `outage: ${reason.detail}`))
  }
  return { hooks, stopped }
})

/** `body` with a gateway over the simulator (its client open meanwhile) and this Pacer; fast retries. */
const withGateway = <A, E>(
  url: string,
  pacer: typeof Pacer.Service,
  settings: Partial<typeof defaults>,
  body: (gateway: typeof MailjetGateway.Service) => Effect.Effect<A, E>
) =>
  Effect.flatMap(MailjetGateway, body).pipe(
    Effect.provide(MailjetGateway.layer.pipe(Layer.provide(Layer.mergeAll(
      clientLayer(url),
      Layer.succeed(Pacer, pacer),
      DeliveryConfig.layerFrom({ retryBase: Duration.millis(1), retryMax: Duration.millis(5), ...settings })
    ))))
  )

const Op = Schema.Literal("call", "retrying", "paced", "replayRead")

describe("MailjetGateway", () => {
  it.live.prop(
    "law: every call through the gateway takes a slot, however it is made and whatever Mailjet answers: one slot for each call",
    { ops: Schema.Array(Op).pipe(Schema.minItems(1), Schema.maxItems(12)), errorRate: Schema.Literal(0, 0.3, 0.7) },
    ({ errorRate, ops }) =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.setFaults({ errorRate })
        let slots = 0
        let expected = 0
        const real = yield* Pacer.make(1e9)
        // No waits, so no slot is taken again for a late wake-up.
        const counting = Pacer.of({ ...real, reserve: Effect.as(Effect.sync(() => slots++), 0) })
        const { hooks } = yield* makeRun
        const before = (yield* sim.requests).length
        yield* withGateway(sim.url, counting, { maxAttempts: 3, outageThreshold: 1000 }, (gateway) =>
          Effect.gen(function*() {
            const lane: Lane = gateway.lane(hooks)
            const c = gateway.client
            for (const op of ops) {
              const at = (yield* sim.requests).length
              if (op === "call") yield* Effect.either(gateway.call(lane, c.getList))
              else if (op === "retrying") yield* Effect.either(gateway.retrying(lane, c.listProperties))
              else if (op === "paced") yield* Effect.either(gateway.paced(c.listRecipient("ann@example.com")))
              else if (yield* gateway.slot(undefined, 2)) yield* Effect.either(c.contactState("ann@example.com"))
              // A replay's read is two calls, two slots taken at once: its second call is not made
              // when the first fails, and its slot is spent all the same.
              expected += op === "replayRead" ? 2 : (yield* sim.requests).length - at
            }
          }))
        const requests = (yield* sim.requests).length - before
        expect(requests).toBeGreaterThanOrEqual(ops.length)
        expect(slots).toBe(expected)
      }).pipe(Effect.provide(Simulator.layer(simulatorOptions()))),
    { fastCheck: { numRuns: 15 } }
  )

  it.live("a 429 slows the shared Pacer: the next slot is further off than the configured rate's", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      // Mailjet allows one request a second; the Pacer would send ten.
      yield* sim.setFaults({ maxRps: 1 })
      const pacer = yield* Pacer.make(10)
      const [first, second] = yield* withGateway(sim.url, pacer, {}, (gateway) =>
        Effect.all([Effect.either(gateway.paced(gateway.client.getList)), Effect.either(gateway.paced(gateway.client.getList))]))
      expect(Either.isRight(first)).toBe(true)
      expect(Either.isLeft(second) && second.left._tag).toBe("RateLimited")
      // At 10/s slots are 105 ms apart; halved by the 429, 210 ms, from the 429 on.
      expect(yield* pacer.reserve).toBeGreaterThan(150)
    }).pipe(Effect.provide(Simulator.layer(simulatorOptions()))))

  it.effect("a stop interrupts a slot's wait, and a call of a stopped run is not made", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      // One call a second: the second slot is a second off, in virtual time, which never passes here.
      const pacer = yield* Pacer.make(1)
      const { hooks, stopped } = yield* makeRun
      yield* withGateway(sim.url, pacer, {}, (gateway) =>
        Effect.gen(function*() {
          const lane = gateway.lane(hooks)
          expect(yield* gateway.slot(hooks.onStop)).toBe(true)
          const waiting = yield* Effect.fork(gateway.slot(hooks.onStop))
          yield* Effect.yieldNow()
          expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
          yield* Deferred.succeed(stopped, "shutdown")
          // Ended by the stop itself: no virtual time passes (a second of real time is the test's patience).
          expect(yield* TestServices.provideLive(Effect.timeout(Fiber.join(waiting), "1 second"))).toBe(false)
          const before = (yield* sim.requests).length
          const call = yield* Effect.either(gateway.call(lane, gateway.client.getList))
          expect(Either.isLeft(call) && call.left._tag).toBe("CallStopped")
          expect((yield* sim.requests).length).toBe(before)
        }))
    }).pipe(Effect.provide(Simulator.layer(simulatorOptions()))))

  it.live("outageThreshold failed calls in a row stop the run for an outage; an answer in between starts the count again", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      const { hooks, stopped } = yield* makeRun
      yield* withGateway(sim.url, yield* Pacer.make(1e9), { outageThreshold: 3 }, (gateway) =>
        Effect.gen(function*() {
          const lane = gateway.lane(hooks)
          const getList = Effect.either(gateway.call(lane, gateway.client.getList))
          yield* sim.setFaults({ outage: true })
          yield* getList
          yield* getList
          yield* sim.setFaults({})
          expect(Either.isRight(yield* getList)).toBe(true)
          yield* sim.setFaults({ outage: true })
          yield* getList
          yield* getList
          expect(yield* Deferred.isDone(stopped)).toBe(false)
          yield* getList
          expect(yield* Deferred.await(stopped)).toMatch(/^outage: 3 calls in a row failed, last: /)
        }))
    }).pipe(Effect.provide(Simulator.layer(simulatorOptions()))))

  it.live("retrying gives up on an unavailable Mailjet after MAILJET_MAX_ATTEMPTS calls, on the schedule", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      const { hooks } = yield* makeRun
      yield* sim.setFaults({ outage: true })
      const before = (yield* sim.requests).length
      const gaveUp = yield* withGateway(sim.url, yield* Pacer.make(1e9), { maxAttempts: 3, outageThreshold: 1000 }, (gateway) =>
        Effect.either(gateway.retrying(gateway.lane(hooks), gateway.client.getList)))
      expect(Either.isLeft(gaveUp) && gaveUp.left.message).toMatch(/^gave up after 3 attempts: /)
      expect((yield* sim.requests).length - before).toBe(3)
    }).pipe(Effect.provide(Simulator.layer(simulatorOptions()))))
})
