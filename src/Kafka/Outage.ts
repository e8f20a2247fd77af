/**
 * Kafka unreachable (the consumer, a commit or the dead-letter topic): the worker is not ready and
 * starts a new session after a backoff, from the committed offsets, until KAFKA_OUTAGE_TIMEOUT has
 * passed since the broker was first found gone. Time comes from `Clock`.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { DeadLetterUnavailable } from "./Records.js"
import { KafkaUnavailable } from "./KafkaError.js"

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
