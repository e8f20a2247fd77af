/**
 * The one writer of `serve`'s shared topics (suppressions, and feedback when set): every record
 * goes through one queue, and one produce is in flight at a time, in the order they came.
 *
 * Why one: an idempotent producer numbers each partition's batches and counts a batch only once
 * it is acknowledged, so produces sent side by side carried the same numbers, and the broker kept
 * the first and acknowledged the others as duplicates. Twenty callbacks at once were answered 200
 * and one suppression was stored. A failed produce replaces the producer: its numbers may no longer
 * agree with the broker's, and every later batch would be refused as out of order.
 */
import type { Producer } from "@platformatic/kafka"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { refusal } from "./Records.js"
import { closing } from "./TopicReader.js"

export interface Outgoing {
  readonly topic: string
  readonly key: string
  /** null is Kafka's tombstone. */
  readonly value: string | null
  readonly headers?: ReadonlyMap<string, string>
}

export interface Writer<E> {
  /** Written after everything queued before it; succeeds once the broker has every record (acks all). */
  readonly write: (messages: ReadonlyArray<Outgoing>) => Effect.Effect<void, E>
  /** Queued like `write` and not waited for: a failure is logged (delivery's own changes). */
  readonly share: (message: Outgoing) => void
}

/** Bytes in one produce at most: far under Kafka's default max.message.bytes (1 MB) for a batch. */
export const PRODUCE_BYTES = 512 * 1024
/** Records in one produce at most. */
const PRODUCE_RECORDS = 500
/** Requests taken at once: their records go out in as few produces as their size allows. */
const TAKE = 10_000

/** A record's size as the broker counts it against max.message.bytes, near enough (a record's own framing is about 20 B). */
export const recordBytes = (m: Outgoing): number => {
  let size = 20 + Buffer.byteLength(m.key) + (m.value === null ? 0 : Buffer.byteLength(m.value))
  for (const [k, v] of m.headers ?? []) size += Buffer.byteLength(k) + Buffer.byteLength(v) + 4
  return size
}

/** Consecutive runs of at most `limit` bytes and PRODUCE_RECORDS records each (a larger record alone), in order. */
export const bounded = <A>(items: ReadonlyArray<A>, size: (a: A) => number, limit = PRODUCE_BYTES): Array<Array<A>> => {
  const out: Array<Array<A>> = []
  let current: Array<A> = []
  let bytes = 0
  for (const item of items) {
    const n = size(item)
    if (current.length > 0 && (bytes + n > limit || current.length === PRODUCE_RECORDS)) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += n
  }
  if (current.length > 0) out.push(current)
  return out
}

interface Request<E> {
  readonly messages: ReadonlyArray<Outgoing>
  readonly done: (error: E | undefined) => Effect.Effect<void>
}

const RETRIES = Schedule.exponential("200 millis").pipe(Schedule.intersect(Schedule.recurs(5)))

export const make = <E extends { readonly message: string }>(options: {
  readonly connect: () => Pick<Producer<string, string, string, string>, "send" | "close">
  /** Before every produce (the topic exists). */
  readonly before: Effect.Effect<void, E>
  readonly fail: (cause: unknown) => E
}): Effect.Effect<Writer<E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const producer = { current: options.connect() }
    yield* Effect.addFinalizer(() => closing("producer", () => producer.current.close()))
    const replace = Effect.suspend(() => {
      const old = producer.current
      producer.current = options.connect()
      return Effect.zipRight(closing("failed producer", () => old.close()), Effect.logDebug("suppressions: producer replaced after a failed produce"))
    })

    type Failure = { readonly refused: string; readonly error: E } | { readonly error: E }
    const once = (messages: ReadonlyArray<Outgoing>) =>
      Effect.zipRight(
        Effect.mapError(options.before, (error): Failure => ({ error })),
        Effect.tryPromise({
          // A null value is Kafka's tombstone; the serializer writes it as such.
          try: () => producer.current.send({ messages: messages as Array<{ topic: string; key: string; value: string }> }),
          catch: (e): Failure => {
            const refused = refusal(e)
            return refused === undefined ? { error: options.fail(e) } : { refused, error: options.fail(e) }
          }
        })
      ).pipe(Effect.tapError(() => replace), Effect.asVoid)
    // Refused as too large by a topic with a smaller max.message.bytes: halves, down to one record.
    const produce = (messages: ReadonlyArray<Outgoing>): Effect.Effect<void, E> =>
      once(messages).pipe(
        Effect.retry({ schedule: RETRIES, while: (f) => !("refused" in f) }),
        Effect.catchAll((f) =>
          "refused" in f && messages.length > 1
            ? Effect.zipRight(
              produce(messages.slice(0, messages.length >> 1)),
              produce(messages.slice(messages.length >> 1))
            )
            : Effect.fail(f.error)
        )
      )

    const queue = yield* Queue.unbounded<Request<E>>()
    // Every request queued meanwhile goes in as few produces as their size allows; a request
    // succeeds only when every produce holding one of its records did.
    const drain = Effect.flatMap(Queue.takeBetween(queue, 1, TAKE), (taken) =>
      Effect.gen(function*() {
        const requests = Chunk.toArray(taken)
        const entries = requests.flatMap((r, i) => r.messages.map((m) => ({ m, i })))
        const failed = new Map<number, E>()
        for (const piece of bounded(entries, (e) => recordBytes(e.m))) {
          const error = yield* Effect.flip(produce(piece.map((e) => e.m))).pipe(Effect.option)
          if (error._tag === "Some") for (const e of piece) failed.set(e.i, error.value)
        }
        for (const [i, r] of requests.entries()) yield* r.done(failed.get(i))
      }))
    yield* Effect.forkScoped(Effect.forever(drain))
    // What delivery shared just before the end still goes, for a few seconds at most: an empty
    // request queued last is done once everything before it was written.
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Deferred.make<void>(), (flushed) => {
        Queue.unsafeOffer(queue, { messages: [], done: () => Deferred.succeed(flushed, undefined) })
        // Interruptible, or the timeout would wait for it: a finalizer runs uninterruptibly.
        return Effect.interruptible(Deferred.await(flushed))
      }).pipe(Effect.timeout("5 seconds"), Effect.ignore)
    )
    const enqueue = (request: Request<E>) => {
      Queue.unsafeOffer(queue, request)
    }

    return {
      write: (messages) =>
        messages.length === 0 ? Effect.void : Effect.flatMap(Deferred.make<void, E>(), (done) => {
          enqueue({ messages, done: (error) => Deferred.done(done, error === undefined ? Exit.void : Exit.fail(error)) })
          return Deferred.await(done)
        }),
      share: (message) =>
        enqueue({
          messages: [message],
          done: (error) => (error === undefined ? Effect.void : Effect.logWarning(error.message))
        })
    }
  })
