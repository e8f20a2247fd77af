/**
 * Kafka unreachable (the consumer, a commit or the dead-letter topic): the worker is not ready and
 * starts a new session after a backoff, from the committed offsets, until KAFKA_OUTAGE_TIMEOUT has
 * passed since the broker was first found gone. Time comes from `Clock`.
 */
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { Shutdown } from "../Run/Shutdown.js"
import type { KafkaConfig } from "./KafkaConfig.js"
import { KafkaUnavailable, StoppedBeforeReady, type SuppressionsUnavailable } from "./KafkaError.js"
import type { DeadLetterUnavailable } from "./Records.js"

/** The longest wait between sessions. */
const MAX_WAIT_MS = 30_000

/** The wait before the next session: doubling from 500 ms, at most 30 s and at most what is left. */
export const backoff = (attempt: number, leftMs: number): number => Math.min(leftMs, MAX_WAIT_MS, 500 * 2 ** Math.min(attempt, 6))

export interface Outage {
  /** A session joined: the next failure starts a new outage. */
  readonly recovered: Effect.Effect<void>
  /**
   * One failure of an outage: waits the backoff, or fails once KAFKA_OUTAGE_TIMEOUT has passed since
   * the outage began. True when `stop` came meanwhile (the worker then stops, nothing to finish).
   */
  readonly rideOut: (
    failure: KafkaUnavailable | DeadLetterUnavailable,
    stop: Effect.Effect<void>
  ) => Effect.Effect<boolean, KafkaUnavailable>
}

export const makeOutage = (outageTimeout: Duration.Duration): Outage => {
  let since: number | undefined
  let attempt = 0
  return {
    recovered: Effect.sync(() => {
      since = undefined
    }),
    rideOut: (failure, stop) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        attempt = since === undefined ? 0 : attempt + 1
        since ??= now
        const left = Duration.toMillis(outageTimeout) - (now - since)
        if (left <= 0) {
          return yield* Effect.fail(new KafkaUnavailable({
            detail: `unreachable for longer than KAFKA_OUTAGE_TIMEOUT (${Duration.format(outageTimeout)}): ${failure.detail}`,
            ...(failure._tag === "KafkaUnavailable" && failure.kind !== undefined ? { kind: failure.kind } : {})
          }))
        }
        const wait = backoff(attempt, left)
        yield* Effect.logWarning(`Kafka unreachable (${failure.detail}): not ready; trying again in ${wait} ms`)
        return yield* Effect.raceFirst(Effect.as(Effect.sleep(wait), false), Effect.as(stop, true))
      })
  }
}

/**
 * A broker restarting as the worker starts: waited for, not ready, as serve does later on, until
 * KAFKA_OUTAGE_TIMEOUT. SIGTERM meanwhile stops the worker at once: it has consumed nothing.
 */
export const untilReachable = <A, R>(start: Effect.Effect<A, SuppressionsUnavailable, R>, kafka: Context.Tag.Service<KafkaConfig>) =>
  Effect.flatMap(Shutdown, (shutdown) =>
    start.pipe(
      Effect.tapError((e) => e.unreachable ? Effect.logWarning(`${e.message} Not ready; trying again.`) : Effect.void),
      Effect.retry({
        while: (e) => e.unreachable === true,
        schedule: Schedule.exponential("500 millis").pipe(
          Schedule.union(Schedule.spaced("30 seconds")),
          Schedule.upTo(kafka.outageTimeout)
        )
      }),
      Effect.raceFirst(Effect.zipRight(shutdown.requested, Effect.fail(new StoppedBeforeReady())))
    ))
