/**
 * A topic read whole, from its start, by a group of its own, then followed: how every worker holds
 * the suppressions topic and its hand-over topic. Records with a key go to `handle`, and so do the markers of a batch that
 * could not be decoded (see Codecs), which have none: the caller decides what one costs.
 */
import { Consumer, stringDeserializers } from "@platformatic/kafka"
import type { Message } from "@platformatic/kafka"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { randomUUID } from "node:crypto"
import { undecodable } from "./Codecs.js"
import { connectionOptions, type KafkaConfig } from "./KafkaConfig.js"
import { SuppressionsUnavailable } from "./KafkaError.js"

export type Record = Message<string, string, string, string>

/** A close that does not answer must not keep the worker from exiting; `part` names the worker's part in the log. */
export const closing = (what: string, close: () => Promise<unknown> | unknown, part = "suppressions") =>
  Effect.promise(() => Promise.resolve().then(close).catch(() => undefined)).pipe(
    // Interruptible even in a finalizer, where closes run: else the timeout waits for the close.
    Effect.interruptible,
    Effect.timeout("3 seconds"),
    Effect.matchEffect({
      onFailure: () => Effect.logWarning(`${part}: the ${what} did not close within 3 s`),
      onSuccess: () => Effect.logDebug(`${part}: ${what} closed`)
    })
  )

/** The topic from its start into `handle`, in order; `onCaughtUp` once every record there at start is read. */
export const readAll = <E>(
  kafka: Context.Tag.Service<KafkaConfig>,
  topic: string,
  fail: (e: unknown) => E,
  handle: (m: Record) => Effect.Effect<void>,
  onCaughtUp: Effect.Effect<void>
) =>
  Effect.scoped(Effect.gen(function*() {
    const consumer = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Consumer({
          ...connectionOptions(kafka),
          groupId: `signal-mailjet-suppressions-${randomUUID()}`,
          deserializers: stringDeserializers,
          autocommit: false
        })
      ),
      (c) => closing("consumer", () => c.close(true))
    )
    const ends = yield* Effect.tryPromise({ try: () => consumer.listOffsets({ topics: [topic] }), catch: fail })
    const pending = new Map(
      (ends.get(topic) ?? []).map((end, partition) => [partition, BigInt(end)] as const).filter(([, end]) => end > 0n)
    )
    if (pending.size === 0) yield* onCaughtUp
    const records = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => consumer.consume({ topics: [topic], mode: "earliest", autocommit: false, maxWaitTime: 200 }),
        catch: fail
      }),
      (s) => closing("stream", () => s.close())
    )
    const apply = (m: Record) =>
      Effect.gen(function*() {
        if ((m.key !== undefined && m.key !== "") || undecodable(m) !== undefined) yield* handle(m)
        const end = pending.get(m.partition)
        if (end !== undefined && m.offset + 1n >= end) {
          pending.delete(m.partition)
          if (pending.size === 0) yield* onCaughtUp
        }
      })
    // The stream's events, not its async iterator: an iterator's return() would wait on the stream.
    // They are queued as they come and handled in order, a batch at a time.
    const queue = yield* Effect.acquireRelease(Queue.unbounded<Record>(), Queue.shutdown)
    const failed = yield* Deferred.make<never, E>()
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const onData = (m: Record) => void Queue.unsafeOffer(queue, m)
        const onError = (e: unknown) => void Deferred.unsafeDone(failed, Exit.fail(fail(e)))
        records.on("data", onData)
        records.once("error", onError)
        return { onData, onError }
      }),
      ({ onData, onError }) =>
        Effect.sync(() => {
          records.off("data", onData)
          records.off("error", onError)
        })
    )
    return yield* Effect.raceFirst(
      Effect.forever(Effect.flatMap(Queue.takeBetween(queue, 1, 1_000), (batch) => Effect.forEach(batch, apply, { discard: true }))),
      Deferred.await(failed)
    )
  }))

/**
 * `readAll`, then followed for as long as the scope lives; returns once caught up. Not caught up
 * and failing for KAFKA_OUTAGE_TIMEOUT: fails, and the worker stops with the reason rather than
 * wait, not ready, for ever.
 */
export const followFromStart = (
  kafka: Context.Tag.Service<KafkaConfig>,
  topic: string,
  fail: (e: unknown) => SuppressionsUnavailable,
  handle: (m: Record) => Effect.Effect<void>
): Effect.Effect<void, SuppressionsUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const caughtUp = yield* Deferred.make<void, SuppressionsUnavailable>()
    let failingSince: number | undefined
    // Read from the start by a group of its own: every worker needs every record.
    yield* Effect.forkScoped(
      readAll(
        kafka,
        topic,
        fail,
        // A record read: the failures before it were not one outage.
        (m) => Effect.zipRight(Effect.sync(() => (failingSince = undefined)), handle(m)),
        Deferred.done(caughtUp, Exit.void)
      ).pipe(
        Effect.tapError((e) =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const since = failingSince ??= now
            yield* Effect.logWarning(`${e.message} Reading it again.`)
            // Once caught up, failing the wait is a no-op: the worker reads on, as it does its input.
            if (now - since >= Duration.toMillis(kafka.outageTimeout)) {
              yield* Deferred.fail(
                caughtUp,
                new SuppressionsUnavailable({
                  topic,
                  detail: `not read to its end for KAFKA_OUTAGE_TIMEOUT (${Duration.format(kafka.outageTimeout)}): ${e.detail}`
                })
              )
            }
          })
        ),
        Effect.retry(Schedule.spaced("2 seconds"))
      )
    )
    yield* Deferred.await(caughtUp)
  })
