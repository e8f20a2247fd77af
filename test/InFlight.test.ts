/**
 * Bulk windows in flight (src/internal/inFlight.ts) as laws, in virtual time: the windows in
 * flight never hold more events or jobs than memory and the call budget carry, unless one alone
 * (so a run always moves on); windows pass in input order; every load is given back. And the
 * limits themselves: more jobs in flight the longer a window lives, never fewer than a few.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Schema, TestClock } from "effect"
import { eventsForHeap, fits, jobsForBudget, type Load, makeGate, MAX_HELD_EVENTS, WindowLife } from "../src/internal/inFlight.js"

const Window = Schema.Struct({
  events: Schema.Int.pipe(Schema.between(1, 40)),
  jobs: Schema.Int.pipe(Schema.between(1, 4)),
  /** How long it stays in flight once admitted. */
  ms: Schema.Int.pipe(Schema.between(0, 50))
})

describe("InFlight", () => {
  it.effect.prop(
    "law: windows in flight hold at most the limits (or one window alone), pass in input order, and give their load back",
    {
      windows: Schema.Array(Window).pipe(Schema.maxItems(30)),
      events: Schema.Int.pipe(Schema.between(1, 100)),
      jobs: Schema.Int.pipe(Schema.between(1, 10))
    },
    ({ events, jobs, windows }) =>
      Effect.gen(function*() {
        const gate = makeGate(() => ({ events, jobs }))
        const admitted: Array<number> = []
        let inFlight = 0
        // Admitted one after another, as the window path's sequential stage does; each leaves after its time.
        const fibers: Array<Fiber.RuntimeFiber<void>> = []
        const driver = yield* Effect.fork(Effect.forEach(windows, (w, i) =>
          Effect.gen(function*() {
            const load: Load = { events: w.events, jobs: w.jobs }
            const id = yield* gate.admit(load)
            inFlight++
            admitted.push(i)
            const held = gate.held()
            // The bound: within the limits, or this window alone.
            if (inFlight > 1) {
              expect(held.events).toBeLessThanOrEqual(events)
              expect(held.jobs).toBeLessThanOrEqual(jobs)
            }
            fibers.push(yield* Effect.forkDaemon(Effect.zipRight(Effect.sleep(w.ms), Effect.suspend(() => {
              inFlight--
              return gate.leave(id, load)
            }))))
          }), { discard: true }))
        yield* TestClock.adjust(windows.length * 60 + 1000)
        yield* Fiber.join(driver)
        yield* TestClock.adjust(1000)
        yield* Fiber.joinAll(fibers)
        expect(admitted).toEqual(windows.map((_, i) => i))
        expect(gate.held()).toEqual({ events: 0, jobs: 0 })
      }),
    { fastCheck: { numRuns: 60 } }
  )

  it("fits: nothing in flight always fits; otherwise both limits hold", () => {
    const limits = { events: 10, jobs: 2 }
    expect(fits({ events: 0, jobs: 0 }, { events: 50, jobs: 9 }, limits)).toBe(true)
    expect(fits({ events: 5, jobs: 1 }, { events: 5, jobs: 1 }, limits)).toBe(true)
    expect(fits({ events: 5, jobs: 1 }, { events: 6, jobs: 1 }, limits)).toBe(false)
    expect(fits({ events: 5, jobs: 1 }, { events: 1, jobs: 2 }, limits)).toBe(false)
  })

  it("the call budget carries more jobs the longer windows live, and a few at least", () => {
    expect(jobsForBudget(10, 0)).toBe(12)
    expect(jobsForBudget(10, 31_000)).toBeGreaterThan(jobsForBudget(10, 3_000))
    // 10 calls/s, 31 s windows, 2.5 calls a job, 80% of the budget: 99 jobs.
    expect(jobsForBudget(10, 31_000)).toBe(99)
  })

  it("memory carries half the heap's limit at 500 B a held event, and never more than MAX_HELD_EVENTS", () => {
    expect(eventsForHeap(30_000_000)).toBe(30_000)
    expect(eventsForHeap(4_345_000_000)).toBe(MAX_HELD_EVENTS)
    expect(eventsForHeap(100)).toBe(1)
  })

  it("a window's life is the last one's, or the oldest in flight's age when that is longer", () => {
    const life = new WindowLife()
    const a = life.start(0)
    const b = life.start(1_000)
    expect(life.estimate(5_000)).toBe(5_000)
    life.end(a, 30_000)
    expect(life.estimate(30_000)).toBe(30_000)
    // b is 39 s old: longer than the last.
    expect(life.estimate(40_000)).toBe(39_000)
    life.end(b, 40_000)
    expect(life.estimate(90_000)).toBe(39_000)
  })
})
