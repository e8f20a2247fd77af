/**
 * The rebalance hand-over's rule and its waits, under TestClock: a new owner reads once the group
 * has been quiet for the hand-over since its last change, at once when nobody can still be
 * sending, then only once no live earlier owner still claims its partitions (the fence); and not
 * at all once a shutdown is requested.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option, TestClock } from "effect"
import { awaitHandOver, awaitRelease, makeGroupChanges } from "../src/Kafka/HandOver.js"
import type { HeldClaim } from "../src/Kafka/HandOverFence.js"

const HANDOVER = 11_000

const waiting = (o: { readonly members?: number; readonly keptOnly?: boolean; readonly claimed?: boolean } = {}) =>
  Effect.gen(function*() {
    const changes = yield* makeGroupChanges
    const stop = yield* Deferred.make<void>()
    const said: Array<string | undefined> = []
    /** Another worker's claim on the partitions, until `release()`. */
    let claimed = o.claimed ?? true
    let claims = 0
    const start = Effect.fork(awaitHandOver({
      changes,
      handover: HANDOVER,
      keptOnly: () => o.keptOnly ?? false,
      assigned: () => [1, 0],
      claim: Effect.sync(() => void claims++),
      claimed: () => claimed,
      members: Effect.succeed(o.members ?? 2),
      waiting: (text) => Effect.sync(() => void said.push(text)),
      stop: Deferred.await(stop)
    }))
    return {
      changes,
      stop,
      said,
      start,
      release: () => (claimed = false),
      claims: () => claims
    }
  })

/** Moves the clock and lets the waiting fiber see it; its result, if it ended. */
const after = <A>(ms: number, fiber: Fiber.Fiber<A>) =>
  Effect.zipRight(Effect.zipRight(TestClock.adjust(ms), Effect.yieldNow()), Effect.map(Fiber.poll(fiber), Option.map((exit) => exit)))

describe("hand-over", () => {
  it.effect("waits MAILJET_SHUTDOWN_TIMEOUT + 1 s after the group's last change, saying until when, then reads", () =>
    Effect.gen(function*() {
      const { said, start } = yield* waiting()
      const fiber = yield* start
      expect(Option.isNone(yield* after(HANDOVER - 1, fiber))).toBe(true)
      expect(said[0]).toBe(
        "hand-over: until 1970-01-01T00:00:11.000Z, the earlier owners of partitions 0,1 may still be finishing their in-flight events (MAILJET_SHUTDOWN_TIMEOUT + 1 s after the group's last change)"
      )
      expect(yield* after(1, fiber)).toStrictEqual(Option.some(yield* Effect.exit(Effect.succeed(false))))
      expect(said.at(-1)).toBeUndefined()
    }))

  it.effect("a change during the wait moves its end: quiet for the whole hand-over after the last one", () =>
    Effect.gen(function*() {
      const { changes, start } = yield* waiting()
      const fiber = yield* start
      expect(Option.isNone(yield* after(5_000, fiber))).toBe(true)
      changes.changed()
      expect(Option.isNone(yield* after(HANDOVER - 1, fiber))).toBe(true)
      expect(Option.isSome(yield* after(1, fiber))).toBe(true)
    }))

  it.effect("a shutdown during the wait ends it at once, without reading", () =>
    Effect.gen(function*() {
      const { start, stop } = yield* waiting()
      const fiber = yield* start
      expect(Option.isNone(yield* after(1_000, fiber))).toBe(true)
      yield* Deferred.succeed(stop, undefined)
      expect(yield* Fiber.join(fiber)).toBe(true)
    }))

  it.effect("alone in the group, or keeping only partitions it drained itself: reads at once", () =>
    Effect.gen(function*() {
      for (const o of [{ members: 1 }, { keptOnly: true }]) {
        const { start } = yield* waiting(o)
        const fiber = yield* start
        expect(Option.isSome(yield* after(0, fiber))).toBe(true)
        expect(yield* Fiber.join(fiber)).toBe(false)
      }
    }))
})

describe("hand-over fence: before the deadline, the earlier owners' release", () => {
  it.effect("no other worker claims the partitions: reads at once, after its own claim", () =>
    Effect.gen(function*() {
      const { claims, start } = yield* waiting({ claimed: false })
      const fiber = yield* start
      expect(yield* after(0, fiber)).toStrictEqual(Option.some(yield* Effect.exit(Effect.succeed(false))))
      expect(claims()).toBe(1)
    }))

  it.effect("the earlier owner releases them (its last commit landed): reads then, not at the deadline", () =>
    Effect.gen(function*() {
      const { release, said, start } = yield* waiting()
      const fiber = yield* start
      expect(Option.isNone(yield* after(2_000, fiber))).toBe(true)
      expect(said[0]).toMatch(/^hand-over: until 1970-01-01T00:00:11.000Z, the earlier owners of partitions 0,1 /)
      release()
      expect(yield* after(250, fiber)).toStrictEqual(Option.some(yield* Effect.exit(Effect.succeed(false))))
      expect(said.at(-1)).toBeUndefined()
    }))

  it.effect("a group change claims again (the partitions may have moved) before deciding", () =>
    Effect.gen(function*() {
      const { changes, claims, start } = yield* waiting()
      const fiber = yield* start
      expect(Option.isNone(yield* after(1_000, fiber))).toBe(true)
      expect(claims()).toBe(1)
      changes.changed()
      expect(Option.isNone(yield* after(0, fiber))).toBe(true)
      expect(claims()).toBe(2)
    }))
})

describe("hand-over fence: after the deadline, the earlier owner's release", () => {
  const claim = (partition: number, member: string): HeldClaim => ({ partition, generation: 3, member, key: `handover:${partition}:${member}` })

  const releasing = (o: { readonly members?: ReadonlySet<string> | undefined; readonly cap?: number; readonly within?: number } = {}) =>
    Effect.gen(function*() {
      const changes = yield* makeGroupChanges
      const stop = yield* Deferred.make<void>()
      let held: ReadonlyArray<HeldClaim> = [{ ...claim(0, "earlier-owner"), ...(o.within === undefined ? {} : { within: o.within }) }]
      const said: Array<string | undefined> = []
      const fiber = yield* Effect.fork(awaitRelease({
        changes,
        held: () => held,
        members: Effect.succeed("members" in o ? o.members : new Set(["earlier-owner", "me"])),
        cap: o.cap ?? 60_000,
        waiting: (text) => Effect.sync(() => void said.push(text)),
        stop: Deferred.await(stop)
      }))
      return { changes, fiber, said, stop, release: () => (held = []) }
    })

  it.effect("a live earlier owner still claiming the partition is waited for, past any deadline, until it releases it", () =>
    Effect.gen(function*() {
      const { fiber, release, said } = yield* releasing()
      expect(Option.isNone(yield* after(30_000, fiber))).toBe(true)
      expect(said[0]).toMatch(/^hand-over: until \S+ at most, waiting for the earlier owners of partitions 0 to release them/)
      release()
      expect(yield* after(250, fiber)).toStrictEqual(Option.some(yield* Effect.exit(Effect.succeed("read"))))
      expect(said.at(-1)).toBeUndefined()
    }))

  it.effect("a claim by a worker no longer in the group is void (it left after its last commit, or crashed): read at once", () =>
    Effect.gen(function*() {
      const { fiber } = yield* releasing({ members: new Set(["me"]) })
      expect(yield* after(0, fiber)).toStrictEqual(Option.some(yield* Effect.exit(Effect.succeed("read"))))
    }))

  it.effect("the broker not saying who is in the group: the claim holds", () =>
    Effect.gen(function*() {
      const { fiber } = yield* releasing({ members: undefined })
      expect(Option.isNone(yield* after(10_000, fiber))).toBe(true)
    }))

  it.effect("a claim that says its worker may take longer to release it (its own, longer MAILJET_SHUTDOWN_TIMEOUT) is waited for that long, past the cap", () =>
    Effect.gen(function*() {
      const { fiber, release } = yield* releasing({ cap: 3_000, within: 31_000 })
      expect(Option.isNone(yield* after(30_000, fiber))).toBe(true)
      release()
      expect(yield* after(250, fiber)).toStrictEqual(Option.some(yield* Effect.exit(Effect.succeed("read"))))
      const never = yield* releasing({ cap: 3_000, within: 31_000 })
      expect(Option.isNone(yield* after(30_999, never.fiber))).toBe(true)
      expect(Option.isSome(yield* after(1, never.fiber))).toBe(true)
    }))

  it.effect("a claim never released is not waited for past the cap", () =>
    Effect.gen(function*() {
      const { fiber } = yield* releasing({ cap: 22_000 })
      expect(Option.isNone(yield* after(21_000, fiber))).toBe(true)
      expect(Option.isSome(yield* after(1_000, fiber))).toBe(true)
    }))

  it.effect("a group change or a shutdown ends the wait without reading", () =>
    Effect.gen(function*() {
      const changed = yield* releasing()
      expect(Option.isNone(yield* after(1_000, changed.fiber))).toBe(true)
      changed.changes.changed()
      expect(yield* Fiber.join(changed.fiber)).toBe("change")
      const stopped = yield* releasing()
      expect(Option.isNone(yield* after(1_000, stopped.fiber))).toBe(true)
      yield* Deferred.succeed(stopped.stop, undefined)
      expect(yield* Fiber.join(stopped.fiber)).toBe("stop")
    }))
})
