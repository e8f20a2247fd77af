/**
 * Whether a worker just given partitions must wait before it reads them, and why. A worker that
 * owned them may still be finishing its in-flight events; it claimed them on the hand-over topic
 * before reading (HandOverFence) and releases them once its last commit landed. So the new owner,
 * having stored its own claim (and read back every claim stored before it), reads as soon as no
 * other worker claims them: a fast drain hands over at once, a slow one delays the hand-over. The
 * deadline (MAILJET_SHUTDOWN_TIMEOUT + 1 s after the group's last change) remains the bound for a
 * claim whose owner left the group without releasing it (it crashed, or was dropped while still
 * draining); past it, a live member's claim is still waited for (`awaitRelease`). Nobody can be
 * finishing when this worker kept only partitions it drained itself, or when it is the group's only
 * member: a worker leaves the group only after its last commit.
 *
 * Time comes from `Clock`, so the rule and its wait run under `TestClock` too.
 */
import { Admin } from "@platformatic/kafka"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import { fencing, type HeldClaim } from "./HandOverFence.js"
import { connectionOptions, type KafkaSettings } from "./KafkaConfig.js"
import { closing } from "./TopicReader.js"

export type HandOver =
  | { readonly _tag: "Read"; readonly why?: string }
  | { readonly _tag: "Wait"; readonly until: number }

export const handOver = (o: {
  readonly now: number
  readonly changedAt: number
  /** MAILJET_SHUTDOWN_TIMEOUT and a margin. */
  readonly handover: number
  readonly keptOnly: boolean
  /** Members of the group now; undefined when the broker did not say. */
  readonly members: number | undefined
  /** Another worker still claims one of the partitions (undefined: not known yet, so it may). */
  readonly claimed?: boolean | undefined
}): HandOver => {
  const until = o.changedAt + o.handover
  if (until <= o.now) return { _tag: "Read" }
  if (o.keptOnly) return { _tag: "Read", why: "group changed: this worker kept only partitions it owned, so it resumes without the hand-over" }
  if (o.members === 1) return { _tag: "Read", why: "this worker is the group's only member: no earlier owner can still be sending, so it reads at once" }
  if (o.claimed === false) return { _tag: "Read", why: RELEASED }
  return { _tag: "Wait", until }
}

const RELEASED = "hand-over: no other worker claims these partitions (their earlier owners released them once their last commits landed), so it reads without waiting out the deadline"

/** What /ready and the log say while the worker waits. */
export const waitingFor = (until: number, partitions: ReadonlyArray<number>): string =>
  `hand-over: until ${new Date(until).toISOString()}, the earlier owners of partitions ${partitions.length === 0 ? "none" : [...partitions].sort((a, b) => a - b).join(",")} may still be finishing their in-flight events (MAILJET_SHUTDOWN_TIMEOUT + 1 s after the group's last change)`

/**
 * When the group last changed, and a wait for its next change. The consumer's listeners call
 * `changed`; `arm` starts a new wait, made before each check so a change at any moment after it is
 * seen: by the check, or by the run that `next` then ends.
 */
export interface GroupChanges {
  readonly changed: () => void
  readonly changedAt: () => number
  readonly arm: Effect.Effect<void>
  /** Completes at the first change after the last `arm`. */
  readonly next: Effect.Effect<void>
  /** The group changed since the last `arm`. */
  readonly happened: Effect.Effect<boolean>
}

export const makeGroupChanges: Effect.Effect<GroupChanges> = Effect.map(Effect.clock, (clock) => {
  let changedAt = clock.unsafeCurrentTimeMillis()
  let change = Deferred.unsafeMake<void>(FiberId.none)
  return {
    changed: () => {
      changedAt = clock.unsafeCurrentTimeMillis()
      Deferred.unsafeDone(change, Exit.void)
    },
    changedAt: () => changedAt,
    arm: Effect.sync(() => {
      change = Deferred.unsafeMake<void>(FiberId.none)
    }),
    next: Effect.suspend(() => Deferred.await(change)),
    happened: Effect.suspend(() => Deferred.isDone(change))
  }
})

/** How often a worker waiting for another's release looks again. */
const RELEASE_POLL_MS = 250

/**
 * Claims the partitions about to be read (again after each change), then waits until the
 * hand-over allows reading them (false), or until `stop` (true): at once when no other worker
 * claims them or nobody can still be sending, else until their claims are released or the
 * deadline (`handover` since the group's last change) passes.
 */
export const awaitHandOver = <E>(o: {
  readonly changes: GroupChanges
  readonly handover: number
  readonly keptOnly: () => boolean
  readonly assigned: () => ReadonlyArray<number>
  /** Stores this worker's claim on `assigned()` and reads back every claim stored before it. */
  readonly claim: Effect.Effect<void, E>
  /** Another worker (in the group or not) still claims one of `assigned()`, as read so far. */
  readonly claimed: () => boolean
  /** Asked only when the rule would wait: alone in the group, there is nothing to wait for. */
  readonly members: Effect.Effect<number | undefined>
  /** Told what the worker waits for, and undefined once it reads. */
  readonly waiting: (text: string | undefined) => Effect.Effect<void>
  readonly stop: Effect.Effect<void>
}): Effect.Effect<boolean, E> =>
  Effect.gen(function*() {
    // Polled: the claims arrive through the hand-over topic's follower.
    const released = Effect.repeat(Effect.sleep(RELEASE_POLL_MS), { until: () => !o.claimed() })
    while (true) {
      yield* o.changes.arm
      yield* o.claim
      const now = yield* Clock.currentTimeMillis
      const decide = (members: number | undefined, claimed: boolean | undefined) =>
        handOver({ now, changedAt: o.changes.changedAt(), handover: o.handover, keptOnly: o.keptOnly(), members, claimed })
      let decision = decide(undefined, undefined)
      if (decision._tag === "Wait") decision = decide(yield* o.members, o.claimed())
      if (decision._tag === "Read") {
        if (decision.why !== undefined) yield* Effect.logInfo(decision.why)
        yield* o.waiting(undefined)
        return false
      }
      const text = waitingFor(decision.until, o.assigned())
      yield* o.waiting(text)
      yield* Effect.logInfo(text)
      const woke = yield* Effect.raceAll([
        Effect.as(Effect.sleep(decision.until - now), "time" as const),
        Effect.as(released, "released" as const),
        Effect.as(o.changes.next, "change" as const),
        Effect.as(o.stop, "stop" as const)
      ])
      if (woke === "stop") return true
      if (woke === "released") {
        yield* Effect.logInfo(RELEASED)
        yield* o.waiting(undefined)
        return false
      }
    }
  }).pipe(Effect.withSpan("HandOver.awaitHandOver"))

/**
 * After the deadline, the fence (HandOverFence): waits until no other live member of the group
 * claims a partition this worker is about to read, so an earlier owner whose drain outlived the
 * deadline is waited for rather than sent after. "change" when the group changed meanwhile (decide
 * again), "stop" at a shutdown. Past `cap` a claim still held is not waited for, loudly: a worker
 * that never releases would otherwise hold its partitions for ever.
 */
export const awaitRelease = (o: {
  readonly changes: GroupChanges
  /** Other workers' claims on the partitions about to be read. */
  readonly held: () => ReadonlyArray<HeldClaim>
  /** The group's member ids now; undefined when the broker did not say. */
  readonly members: Effect.Effect<ReadonlySet<string> | undefined>
  /** The least time a live claim is waited for; a claim that says it may take longer (`within`) gets that. */
  readonly cap: number
  readonly waiting: (text: string | undefined) => Effect.Effect<void>
  readonly stop: Effect.Effect<void>
}): Effect.Effect<"read" | "change" | "stop"> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    let said = false
    while (true) {
      if (yield* o.changes.happened) return "change"
      const claims = o.held()
      const live = claims.length === 0 ? [] : fencing(claims, yield* o.members)
      if (live.length === 0) {
        if (said) yield* Effect.logInfo("hand-over: the earlier owners released their partitions (last commits landed): reading")
        yield* o.waiting(undefined)
        return "read"
      }
      const partitions = [...new Set(live.map((c) => c.partition))].sort((a, b) => a - b).join(",")
      const cap = Math.max(o.cap, ...live.map((c) => c.within ?? 0))
      const until = start + cap
      if ((yield* Clock.currentTimeMillis) >= until) {
        yield* Effect.logWarning(
          `hand-over: partitions ${partitions} are still claimed by a member of the group that has not released them within ${cap} ms: reading anyway; events it had in flight may be sent again`
        )
        yield* o.waiting(undefined)
        return "read"
      }
      if (!said) {
        said = true
        const text = `hand-over: until ${new Date(until).toISOString()} at most, waiting for the earlier owners of partitions ${partitions} to release them: their in-flight events are finishing and their last commits landing`
        yield* o.waiting(text)
        yield* Effect.logInfo(text)
      }
      const woke = yield* Effect.raceAll([
        Effect.as(Effect.sleep(RELEASE_POLL_MS), "time" as const),
        Effect.as(o.changes.next, "change" as const),
        Effect.as(o.stop, "stop" as const)
      ])
      if (woke !== "time") return woke
    }
  }).pipe(Effect.withSpan("HandOver.awaitRelease"))

/** The group's members (their ids) as the broker has them now; undefined when it cannot say. */
export const groupMemberIds = (kafka: KafkaSettings): Effect.Effect<ReadonlySet<string> | undefined> =>
  Effect.acquireUseRelease(
    Effect.sync(() => new Admin({ ...connectionOptions(kafka), clientId: `${kafka.clientId}-handover` })),
    (admin) =>
      Effect.tryPromise(() => admin.describeGroups({ groups: [kafka.groupId] })).pipe(
        Effect.map((groups) => {
          const members = groups.get(kafka.groupId)?.members
          return members === undefined ? undefined : new Set(members.keys())
        }),
        Effect.timeout("3 seconds"),
        Effect.orElseSucceed(() => undefined)
      ),
    // Bounded: an admin whose broker is gone may never answer its close.
    (admin) => closing("admin", () => admin.close(), "hand-over")
  )

/** How many members the group has now; undefined when the broker cannot say (then the worker waits). */
export const groupMembers = (kafka: KafkaSettings): Effect.Effect<number | undefined> =>
  Effect.map(groupMemberIds(kafka), (ids) => ids?.size)
