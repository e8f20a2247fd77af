import { expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, TestClock } from "effect"
import { Delivery } from "../src/Delivery/Delivery.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { deliveryLayer, KEY, presetProperties, SECRET } from "./support/layers.js"

// The simulator stamps requests with Effect's Clock, here the TestClock: the gaps between
// attempts are the backoff the engine chose, in virtual time, whatever the real I/O took.
it.effect("MailjetUnavailable is retried with jittered exponential backoff, then dead-lettered after maxAttempts", () =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    yield* sim.setFaults({ outage: true })
    const fiber = yield* Effect.fork(
      Effect.flatMap(Delivery, (d) => d.deliver({ type: "track", event: "Subscribed", traits: { email: "retry@example.com" } }))
        .pipe(
          Effect.provide(deliveryLayer(sim.url, {
            maxAttempts: 5,
            retryBase: Duration.seconds(1),
            retryMax: Duration.seconds(6)
          }))
        )
    )
    // Let real I/O happen between virtual steps until the event is done.
    for (let i = 0; i < 400 && fiber.unsafePoll() === null; i++) {
      yield* Effect.promise(() => new Promise<void>((r) => setTimeout(r, 2)))
      yield* TestClock.adjust(Duration.millis(100))
    }
    const outcome = yield* Fiber.join(fiber)
    expect(outcome).toMatchObject({ outcome: "dead-lettered", error: "MailjetUnavailable", attempts: 5 })
    const at = (yield* sim.requests).map((r) => r.at)
    expect(at.length).toBe(5)
    const gaps = at.slice(1).map((t, i) => t - at[i]!)
    // Attempt n+1 waits 0.5..1 × base·2^(n-1), capped at retryMax (6 s); the TestClock moves in 100 ms steps.
    const bounds = [[500, 1000], [1000, 2000], [2000, 4000], [3000, 6000]] as const
    gaps.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual(bounds[i]![0])
      expect(gap).toBeLessThanOrEqual(bounds[i]![1] + 100)
    })
    yield* TestClock.adjust(Duration.minutes(5))
    expect((yield* sim.requests).length).toBe(5)
  }).pipe(Effect.provide(Simulator.layer({ apiKey: KEY, secretKey: SECRET, properties: presetProperties }))))
