/**
 * Per-contact order (src/internal/order.ts) as laws, in virtual time: a contact's events start one
 * after another in the order their tickets were taken, each only once the one before it ended; other
 * contacts do not wait for it; and a contact held by a bulk job that may still land waits for the
 * job's end. Fence changes come out as a Stream.
 */
import { expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Option, Schema, Stream, TestClock } from "effect"
import { makeRunState } from "../src/Delivery/RunState.js"
import { makeOrder } from "../src/internal/order.js"

const Event = Schema.Struct({ contact: Schema.Literal("a", "b", "c"), ms: Schema.Int.pipe(Schema.between(0, 50)) })

it.effect.prop(
  "law: a contact's event starts only once its previous one ended, in ticket order; another contact's does not wait for it",
  { events: Schema.Array(Event).pipe(Schema.maxItems(25)) },
  ({ events }) =>
    Effect.gen(function*() {
      const order = makeOrder(Duration.minutes(1))
      const log: Array<{ readonly i: number; readonly contact: string; readonly start: number; readonly end: number }> = []
      // Tickets are taken in input order, as the engine's sequential stage takes them.
      const tickets = events.map((e) => order.take(e.contact))
      const fibers = yield* Effect.forEach(events, (e, i) =>
        Effect.fork(Effect.gen(function*() {
          yield* order.turn(tickets[i]!)
          const start = yield* TestClock.currentTimeMillis
          yield* Effect.sleep(e.ms)
          log.push({ i, contact: e.contact, start, end: yield* TestClock.currentTimeMillis })
        }).pipe(Effect.ensuring(order.release(tickets[i]!)))))
      yield* TestClock.adjust(Duration.seconds(10))
      yield* Fiber.joinAll(fibers)
      expect(log.length).toBe(events.length)
      const at = new Map(log.map((l) => [l.i, l]))
      for (const contact of ["a", "b", "c"]) {
        const mine = events.flatMap((e, i) => (e.contact === contact ? [at.get(i)!] : []))
        for (let k = 1; k < mine.length; k++) expect(mine[k]!.start).toBeGreaterThanOrEqual(mine[k - 1]!.end)
        // Each starts as soon as its own previous one ended: other contacts never held it.
        const expected = mine.reduce<Array<number>>((acc, _, k) => [...acc, k === 0 ? 0 : mine[k - 1]!.end], [])
        expect(mine.map((l) => l.start)).toEqual(expected)
      }
    }),
  { fastCheck: { numRuns: 50 } }
)

it.effect("a contact held by a bulk job waits for its end; the fence's opening and end come out of `changes`", () =>
  Effect.gen(function*() {
    const order = makeOrder(Duration.minutes(1))
    const state = yield* makeRunState
    const changes = yield* order.changes
    const seen = yield* Effect.fork(Stream.runCollect(Stream.take(changes, 2)))
    const fence = order.fences.open(7, ["ann@example.com"])
    const waiting = yield* Effect.fork(order.fenced(["ann@example.com"], state))
    const free = yield* Effect.fork(order.fenced(["bob@example.com"], state))
    yield* TestClock.adjust(Duration.seconds(30))
    expect(Option.isSome(yield* Fiber.poll(free))).toBe(true)
    expect(Option.isNone(yield* Fiber.poll(waiting))).toBe(true)
    yield* order.fences.close(fence)
    yield* Fiber.join(waiting)
    expect(Option.isNone(yield* state.stopped)).toBe(true)
    expect(Chunk.toReadonlyArray(yield* Fiber.join(seen)).map((c) => `${c._tag} ${c.fence.job}`)).toEqual(["Opened 7", "Ended 7"])
  }).pipe(Effect.scoped))
