/**
 * Items gathered into groups as they are read: a group is handed on once full, or once it has
 * waited its linger since its first item (since reading went on, if reading waited for the
 * reader). It stands where `Stream.aggregateWithin` stood: there, a finished group's sink fiber
 * kept its leftover chunk (and through its items whole 64 KB input reads) until the old
 * generation was collected, which promoted nearly all the input text (BENCHMARKS.md, "Issue 28,
 * bulk: a gathering of our own"). Here an item is folded into its group as its chunk arrives, in
 * one synchronous step, and nothing but the group holds it.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"

export interface Gatherer<M, G> {
  /** A new, empty group: made as its first item arrives. */
  readonly make: () => G
  /** Adds an item to its group; true once the group is full. */
  readonly add: (group: G, item: M) => boolean
  /** How long a group waits for more items after its first, read as the group starts. */
  readonly linger: () => Duration.Duration
}

/**
 * The groups in input order. One full group may wait for its reader while the next gathers, as
 * with `aggregateWithin`; then reading waits. A group gathered when the input fails is handed on
 * before the failure: its items still get their outcomes.
 */
export const gathered = <M, G, E, R>(items: Stream.Stream<M, E, R>, gatherer: Gatherer<M, G>): Stream.Stream<G, E, R> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const ready: Array<G> = []
    let group: G | undefined
    let due = 0
    /** The group's linger, ms. */
    let linger = 0
    let end: Exit.Exit<void, E> | undefined
    /** The reader waits on `more` for a group or the end; the gathering on `room` for the reader. */
    let more = Deferred.unsafeMake<void>(FiberId.none)
    let room = Deferred.unsafeMake<void>(FiberId.none)
    const handOn = () => {
      if (group === undefined) return
      ready.push(group)
      group = undefined
      Deferred.unsafeDone(more, Exit.void)
    }
    const gather = (chunk: Iterable<M>, now: number) => {
      for (const item of chunk) {
        if (group === undefined) {
          group = gatherer.make()
          linger = Duration.toMillis(gatherer.linger())
          due = now + linger
          // A reader waiting for a group now waits for this one's linger.
          Deferred.unsafeDone(more, Exit.void)
        }
        if (gatherer.add(group, item)) handOn()
      }
    }
    /** Whether reading waits for the reader. */
    let held = false
    // While more than one group waits, reading waits.
    const waitForRoom: Effect.Effect<void> = Effect.suspend(() => {
      if (ready.length <= 1) return Effect.void
      room = Deferred.unsafeMake(FiberId.none)
      held = true
      return Effect.zipRight(Deferred.await(room), waitForRoom)
    })
    // Pulled, not run into a sink: a sink's channel executors kept each chunk past the young
    // generation, a pull does not (measured: 117 MB against 9 of a 124 MB file promoted).
    const pull = yield* Stream.toPull(items)
    // Not a generator: a suspended one keeps its last chunk while it waits.
    yield* Effect.forever(Effect.flatMap(pull, (chunk) => Effect.flatMap(Clock.currentTimeMillis, (now) => (gather(chunk, now), waitForRoom)))).pipe(
      Effect.catchAll(Option.match({ onNone: () => Effect.void, onSome: Effect.fail })),
      Effect.onExit((exit) =>
        Effect.sync(() => {
          handOn()
          end = exit
          Deferred.unsafeDone(more, Exit.void)
        })
      ),
      Effect.forkScoped
    )
    const next: Effect.Effect<G, Option.Option<E>> = Effect.suspend(() => {
      const g = ready.shift()
      if (g !== undefined) {
        if (!held) return Effect.succeed(g)
        held = false
        // Reading goes on: the group begun meanwhile gets its whole linger again. Else a reader
        // slow, then quick, finds it due a few items in, and a backfill's window is a few events.
        return Effect.map(Clock.currentTimeMillis, (now) => {
          if (group !== undefined) due = Math.max(due, now + linger)
          Deferred.unsafeDone(room, Exit.void)
          return g
        })
      }
      if (end !== undefined) {
        return Exit.isSuccess(end) ? Effect.fail(Option.none()) : Effect.failCause(Cause.map(end.cause, Option.some))
      }
      more = Deferred.unsafeMake(FiberId.none)
      if (group === undefined) return Effect.zipRight(Deferred.await(more), next)
      return Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (now >= due) handOn()
        return now >= due ? next : Effect.zipRight(Effect.timeout(Deferred.await(more), Duration.millis(due - now)).pipe(Effect.ignore), next)
      })
    })
    return Stream.repeatEffectOption(next)
  }))
