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
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
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
    const failure = yield* delivery.runTagged(source, options.read, state, options.hold).pipe(
      Stream.runForEachChunk((chunk) => {
        const items = Chunk.toReadonlyArray(chunk)
        for (const [, result] of items) addToSummary(summary, result)
        return options.sink(items)
      }),
      Effect.flip,
      Effect.option
    )
    return { summary, failure, shutdown: yield* state.draining }
  })

/**
 * Ends a stream at `signal`: at once while a read waits for input, else at the next chunk, since
 * input that is always ready (a backlog on stdin, a file) would keep `interruptWhen` from winning
 * its race. Every element of a chunk already read still goes on.
 */
export const readUntil = <A, E, R>(self: Stream.Stream<A, E, R>, signal: Effect.Effect<void>): Stream.Stream<A, E, R> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    let stop = false
    yield* Effect.forkScoped(Effect.andThen(signal, () => {
      stop = true
    }))
    return self.pipe(
      Stream.interruptWhen(signal),
      Stream.chunks,
      Stream.takeWhile(() => !stop),
      Stream.flattenChunks
    )
  }))

export const DEFAULT_SHUTDOWN_TIMEOUT = Duration.seconds(10)
