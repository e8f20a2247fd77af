/**
 * One delivery run between a source and a sink: what `deliver`, `replay` and `serve` share.
 *
 * The source's items go through `Delivery.runTagged`; their results reach the sink a chunk at a
 * time, in input order, and are counted. A shutdown request starts the drain: nothing new is
 * sent, what is sending finishes within the deadline, then the rest are not attempted. The run
 * ends with its summary and, when it ended early, the typed reason: a fatal error, an outage, or
 * a failure of the source or the sink.
 */
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Delivery } from "../Delivery/Delivery.js"
import { makeRunState, type RunStopped } from "../Delivery/RunState.js"
import { addToSummary, emptySummary, type Result, type Summary } from "../Domain/Outcome.js"
import { Shutdown } from "./Shutdown.js"

export interface SessionEnd<E> {
  readonly summary: Summary
  /** Why the run ended early, if it did. */
  readonly failure: Option.Option<E>
  /** A shutdown was requested during the run. */
  readonly shutdown: boolean
}

/** When the source should stop reading: each source heeds what fits it. */
export interface StopSignals {
  /** A shutdown was requested. */
  readonly shutdown: Effect.Effect<void>
  /** Sending stopped (a fatal error, an outage, or the shutdown deadline). */
  readonly stopped: Effect.Effect<void>
}

export const run = <M, E, R, E2>(options: {
  readonly source: (signals: StopSignals) => Stream.Stream<M, E, R>
  readonly read: (item: M) => { readonly line: number; readonly text: string }
  /** What of an item is held while its event waits (Delivery.runTagged). */
  readonly hold?: (item: M) => M
  readonly sink: (items: ReadonlyArray<readonly [M, Result]>) => Effect.Effect<void, E2>
  readonly shutdownTimeout: Duration.DurationInput
}): Effect.Effect<SessionEnd<E | E2 | RunStopped>, never, R | Delivery | Shutdown | Scope.Scope> =>
  Effect.gen(function*() {
    const delivery = yield* Delivery
    const shutdown = yield* Shutdown
    const state = yield* makeRunState
    yield* Effect.forkScoped(
      shutdown.requested.pipe(
        Effect.zipRight(state.drain),
        Effect.zipRight(Effect.sleep(options.shutdownTimeout)),
        Effect.zipRight(state.stop({ _tag: "Shutdown" }))
      )
    )
    const summary = emptySummary()
    const source = options.source({ shutdown: shutdown.requested, stopped: Effect.asVoid(state.onStop) })
    // Pulled, not run into a sink: a sink's channel executors kept each chunk of results past the
    // young generation, a pull does not (see readUntil).
    const failure = yield* Effect.flatMap(Stream.toPull(delivery.runTagged(source, options.read, state, options.hold)), (pull) => {
      const loop: Effect.Effect<never, Option.Option<E | E2 | RunStopped>, R> = Effect.flatMap(pull, (chunk) => {
        const items = Chunk.toReadonlyArray(chunk)
        for (const [, result] of items) addToSummary(summary, result)
        return Effect.zipRight(Effect.mapError(options.sink(items), Option.some), loop)
      })
      return Effect.flip(loop)
    }).pipe(Effect.scoped)
    return { summary, failure, shutdown: yield* state.draining }
  })

/**
 * Ends a stream at `signal`: at once while a read waits for input, else at the next chunk, since
 * input that is always ready (a backlog on stdin, a file) would keep a race from ending it. Every
 * element of a chunk already read still goes on. One fiber reads a chunk ahead and hands it over;
 * `Stream.interruptWhen` forked a fiber a chunk instead, whose results kept nearly every chunk
 * of the input past V8's young generation (measured: 138 MB of a 124 MB file promoted, 8 without it).
 */
export const readUntil = <A, E, R>(self: Stream.Stream<A, E, R>, signal: Effect.Effect<void>): Stream.Stream<A, E, R> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    let stop = false
    /** The chunk read and not yet taken, or how the input ended. */
    let read: Exit.Exit<Chunk.Chunk<A>, Option.Option<E>> | undefined
    let wake = Deferred.unsafeMake<void>(FiberId.none)
    let taken = Deferred.unsafeMake<void>(FiberId.none)
    yield* Effect.forkScoped(Effect.andThen(signal, () => {
      stop = true
      Deferred.unsafeDone(wake, Exit.void)
    }))
    const pull = yield* Stream.toPull(self)
    // Not a generator: a suspended one keeps its last chunk while it waits.
    const readOne = Effect.suspend(() => {
      taken = Deferred.unsafeMake(FiberId.none)
      return Effect.flatMap(Effect.exit(pull), (exit) => {
        read = exit
        Deferred.unsafeDone(wake, Exit.void)
        return Exit.isFailure(exit) ? Effect.fail(undefined) : Deferred.await(taken)
      })
    })
    yield* Effect.forkScoped(Effect.ignore(Effect.forever(readOne)))
    const take: Effect.Effect<Chunk.Chunk<A>, Option.Option<E>> = Effect.suspend(() => {
      if (stop) return Effect.fail(Option.none())
      const r = read
      if (r === undefined) {
        wake = Deferred.unsafeMake(FiberId.none)
        return Effect.zipRight(Deferred.await(wake), take)
      }
      if (Exit.isSuccess(r)) {
        read = undefined
        Deferred.unsafeDone(taken, Exit.void)
      }
      return r
    })
    return Stream.repeatEffectChunkOption(take)
  }))

export const DEFAULT_SHUTDOWN_TIMEOUT = Duration.seconds(10)
