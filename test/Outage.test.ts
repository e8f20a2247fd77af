/**
 * A Kafka outage as `serve` rides it out, under TestClock: new sessions after a doubling backoff,
 * until KAFKA_OUTAGE_TIMEOUT has passed since the broker was first found gone; a session that
 * joins starts the count again, and a shutdown ends the wait at once.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Option, TestClock } from "effect"
import { KafkaUnavailable } from "../src/Kafka/KafkaError.js"
import { makeOutage } from "../src/Kafka/Outage.js"

const gone = new KafkaUnavailable({ detail: "connect ECONNREFUSED" })

/** The outage's next wait: how long it took, and whether it said stop. */
const rideOnce = (outage: ReturnType<typeof makeOutage>, stop: Effect.Effect<void> = Effect.never) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(outage.rideOut(gone, stop))
    yield* Effect.yieldNow()
    let waited = 0
    while (Option.isNone(yield* Fiber.poll(fiber))) {
      yield* TestClock.adjust(100)
      yield* Effect.yieldNow()
      waited += 100
    }
    return { waited, exit: yield* Fiber.await(fiber) }
  })

describe("Kafka outage", () => {
  it.effect("backs off 0.5, 1, 2, 4 s…, then fails once KAFKA_OUTAGE_TIMEOUT has passed, naming it", () =>
    Effect.gen(function*() {
      const outage = makeOutage(Duration.seconds(10))
      const waits: Array<number> = []
      let last: Exit.Exit<boolean, KafkaUnavailable> = Exit.succeed(false)
      while (Exit.isSuccess(last)) {
        const r = yield* rideOnce(outage)
        last = r.exit
        if (Exit.isSuccess(last)) waits.push(r.waited)
      }
      // 0.5 + 1 + 2 + 4 = 7.5 s; the next wait is only what is left of the 10 s.
      expect(waits).toStrictEqual([500, 1000, 2000, 4000, 2500])
      expect(Exit.isFailure(last) && String(last.cause)).toContain("unreachable for longer than KAFKA_OUTAGE_TIMEOUT (10s)")
    }))

  it.effect("a session that joins ends the outage: the next failure starts from the first wait", () =>
    Effect.gen(function*() {
      const outage = makeOutage(Duration.seconds(10))
      yield* rideOnce(outage)
      yield* rideOnce(outage)
      yield* TestClock.adjust(Duration.minutes(5))
      yield* outage.recovered
      const r = yield* rideOnce(outage)
      expect(r.waited).toBe(500)
      expect(r.exit).toStrictEqual(Exit.succeed(false))
    }))

  it.effect("a shutdown during the wait ends it at once", () =>
    Effect.gen(function*() {
      const outage = makeOutage(Duration.minutes(5))
      yield* rideOnce(outage)
      yield* rideOnce(outage)
      const stop = yield* Deferred.make<void>()
      yield* Deferred.succeed(stop, undefined)
      const r = yield* rideOnce(outage, Deferred.await(stop))
      expect(r.exit).toStrictEqual(Exit.succeed(true))
      // Not the 2 s the third wait would be.
      expect(r.waited).toBeLessThanOrEqual(100)
    }))
})
