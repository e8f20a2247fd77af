/**
 * `serve`'s shared suppressions: a compacted topic keyed by email, `delivery-{id}-suppressions`.
 * A suppression Mailjet reports (its event callbacks, see Webhook) is stored there before it is
 * acknowledged; every worker of the group reads the whole topic at start and then follows it, so
 * one received by any worker applies in all, and a restart keeps it. An explicit `Subscribed`
 * writes a tombstone, so restarts agree that it was lifted; so does an erasure, whose erasure record
 * (ErasureSharing) keeps the suppression without the address. Each suppression from Mailjet is also
 * written, as a Signal event, to `KAFKA_FEEDBACK_TOPIC` when set (see Suppressions.feedbackEvent).
 */
import { Producer } from "@platformatic/kafka"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { randomUUID } from "node:crypto"
import { Delivery } from "../Delivery/Delivery.js"
import { feedbackEvent, type Learnt, Suppressions, type SuppressionSet } from "../Suppressions.js"
import { undecodable } from "./Codecs.js"
import { ensureCompacted } from "./CompactedTopic.js"
import { KafkaConfig, producerOptions } from "./KafkaConfig.js"
import { kafkaFailure, SuppressionsUnavailable } from "./KafkaError.js"
import { type HandOverFence, makeHandOverFence } from "./HandOverFence.js"
import { untilReachable } from "./Outage.js"
import { JOB_KEY, shareJobs } from "./JobSharing.js"
import { ERASURE_KEY, groupSecret, shareErasures } from "./ErasureSharing.js"
import { makeTombstones, type TombstoneSet, Tombstones } from "../Domain/Tombstones.js"
import { MailjetConfig } from "../Mailjet/MailjetConfig.js"
import { reasonOf, SuppressionSnapshot } from "../Mailjet/SuppressionSnapshot.js"
import * as SuppressionWriter from "./SuppressionWriter.js"
import type { Outgoing } from "./SuppressionWriter.js"
import { followFromStart, type Record } from "./TopicReader.js"
import { bringView, makeTopicView, SNAPSHOT_KEY } from "./TopicView.js"


const suppressionCount = Metric.gauge("signal_mailjet_suppressions", {
  description: "Contacts this worker holds as suppressed: standing consent does not re-subscribe them"
})
const undecodableCount = Metric.counter("signal_mailjet_suppressions_undecodable_total", {
  description: "Records of the suppressions topic skipped because their batch could not be decoded: suppressions this worker may not hold",
  incremental: true
})

/** A record of the topic: the suppression; a tombstone (no value) lifts it. */
const Stored = Schema.parseJson(Schema.Struct({
  email: Schema.String,
  reason: Schema.String,
  event: Schema.String,
  at: Schema.String,
  /** The contact's ID: the suppression is part of the list's view read from Mailjet (SuppressionSnapshot). */
  id: Schema.optional(Schema.Number)
}))
const encodeStored = Schema.encodeSync(Stored)
/** A header on this worker's stored suppressions: its follower reads them back by it. */
const WRITE_ID = "signal-mailjet-write"
/** How long a 200 waits for the read-back; the record is stored already. */
const READ_BACK = Duration.seconds(5)
const decodeStored = Schema.decodeUnknownOption(Stored)

// Where they were before the split: the worker and its tests import them from here.
export { StoppedBeforeReady, SuppressionsUnavailable } from "./KafkaError.js"

export const suppressionTopicName = (deliveryTopic: string) => `${deliveryTopic}-suppressions`
/** The hand-over's claims (HandOverFence): a topic of their own, so the suppressions topic holds only what its readers expect. */
export const handOverTopicName = (deliveryTopic: string) => `${deliveryTopic}-handover`

export class SuppressionTopic extends Context.Tag("signal-mailjet/SuppressionTopic")<SuppressionTopic, {
  readonly topic: string
  readonly feedbackTopic: Option.Option<string>
  /** Stored once the broker has it on every in-sync replica (acks all); then fed back upstream. */
  readonly store: (learnt: ReadonlyArray<Learnt>) => Effect.Effect<void, SuppressionsUnavailable>
  /**
   * Reads the whole topic into `set` (returns once caught up), then follows it for as long as the
   * scope lives; and shares delivery's own changes to `set` (an `unsub`, a lift) through it.
   */
  readonly follow: (set: SuppressionSet) => Effect.Effect<void, SuppressionsUnavailable, Scope.Scope>
  /**
   * Shares this worker's bulk jobs that may still land, and fences here the other workers' (read
   * from the start: a worker taking over a partition waits for the jobs its last owner left
   * running); returns once caught up.
   */
  readonly followJobs: (jobs: Context.Tag.Service<Delivery>["jobs"]) => Effect.Effect<void, SuppressionsUnavailable, Scope.Scope>
  /** Shares this worker's erasures and learns the group's (ErasureSharing); returns once caught up. */
  readonly followErasures: (set: TombstoneSet) => Effect.Effect<void, SuppressionsUnavailable, Scope.Scope>
  /** The rebalance hand-over's claims on the delivery topic's partitions (HandOverFence); read by `follow`. */
  readonly fence: HandOverFence
  /** The list's view the group keeps on the topic, as `follow` has read it (Mailjet/SuppressionSnapshot). */
  readonly snapshot: typeof SuppressionSnapshot.Service
}>() {
  static readonly layer = Layer.scoped(SuppressionTopic, Effect.gen(function*() {
    const kafka = yield* KafkaConfig
    const feedbackTopic = yield* Config.option(Config.nonEmptyString("KAFKA_FEEDBACK_TOPIC"))
    const topic = suppressionTopicName(kafka.topic)
    const handOverTopic = handOverTopicName(kafka.topic)
    const fail = (e: unknown) => {
      const k = kafkaFailure(e)
      return new SuppressionsUnavailable({ topic, detail: k.detail, unreachable: k.kind?._tag === "Unreachable" })
    }
    const attempt = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: fail })

    // On first use, not at start: serve answers /health before Kafka is reached.
    let ensured = false
    const ensure = Effect.suspend(() =>
      ensured ? Effect.void : Effect.tap(Effect.zipRight(ensureCompacted(kafka, topic, attempt), ensureCompacted(kafka, handOverTopic, attempt)), () => {
        ensured = true
      })
    )

    // Tells this worker's records from the others' when they come back.
    const origin = randomUUID()

    // Every record of this worker goes through one writer, in order: a callback's suppressions, and
    // delivery's own changes in the background (a lost one is found again at the next start:
    // preflight reads who Mailjet holds as unsubscribed). An unsubscribe and its lift never swap.
    const writer = yield* SuppressionWriter.make({
      // A batch retried after a lost reply is written once.
      connect: () => new Producer({ ...producerOptions(kafka), idempotent: true }),
      before: ensure,
      fail
    })
    const share = writer.share

    // This worker's follower reads each stored suppression back before the webhook answers 200,
    // so its own set has it: a consent event right after the callback is demoted here too.
    const readBack = new Map<string, Deferred.Deferred<void>>()
    let following = false
    let written = 0
    /** Writes `records` (and `extra`, not read back), then waits until this worker's follower has read `records` back. */
    const writeReadBack = (records: ReadonlyArray<Outgoing>, extra: ReadonlyArray<Outgoing>, late: (within: string) => string) =>
      Effect.suspend(() => {
        const ids = records.map(() => `${origin}:${++written}`)
        const waits = following ? ids.map(() => Deferred.unsafeMake<void>(FiberId.none)) : []
        waits.forEach((d, i) => readBack.set(ids[i]!, d))
        return writer.write([...records.map((r, i) => ({ ...r, headers: new Map([[WRITE_ID, ids[i]!]]) })), ...extra]).pipe(
          Effect.zipRight(Effect.forEach(waits, Deferred.await, { discard: true }).pipe(
            Effect.timeout(READ_BACK),
            Effect.catchAll(() => Effect.logWarning(late(Duration.format(READ_BACK))))
          )),
          Effect.ensuring(Effect.sync(() => ids.forEach((id) => readBack.delete(id))))
        )
      })
    const store = (learnt: ReadonlyArray<Learnt>) =>
      writeReadBack(
        learnt.map((l) => ({ topic, key: l.email, value: encodeStored(l) })),
        Option.match(feedbackTopic, {
          onNone: () => [],
          onSome: (feedback) => learnt.map((l) => ({ topic: feedback, key: l.email, value: JSON.stringify(feedbackEvent(l)) }))
        }),
        (within) => `suppressions: stored, but not read back within ${within}: this worker applies them once its reader catches up`
      )
    const fence = makeHandOverFence({
      topic: handOverTopic,
      origin,
      write: (claims, plain) => writeReadBack(claims, plain, (within) => `hand-over: claims stored, but not read back within ${within}: another worker's claim stored just before may be missed`)
    })

    /** A record this worker wrote is read back: whoever waits for it (`writeReadBack`) goes on. */
    const readBackDone = (m: Record) => {
      const id = m.headers?.get(WRITE_ID)
      const waiting = id === undefined ? undefined : readBack.get(id)
      return waiting === undefined ? Effect.void : Deferred.succeed(waiting, undefined)
    }

    const followTopic = (handle: (m: Record) => Effect.Effect<void>, from = topic) => followFromStart(kafka, from, fail, handle)

    const view = makeTopicView({
      topic,
      trustFor: yield* Config.duration("MAILJET_SUPPRESSIONS_MAX_AGE").pipe(Config.withDefault(Duration.hours(1))),
      encode: (e) => encodeStored({ email: e.email, reason: reasonOf(e.at), event: "unsub", at: e.at, id: e.id }),
      write: (records) => writeReadBack(records, [], (within) => `suppressions: the list's view stored, but not read back within ${within}`)
    })

    const followJobs = shareJobs({ topic, origin, share, ensure, follow: followTopic })
    const followErasures = shareErasures({ topic, share, ensure, follow: followTopic })

    const follow = (set: SuppressionSet) =>
      Effect.gen(function*() {
        yield* ensure
        const clock = yield* Effect.clock
        set.observe({
          added: (email, s) => {
            const at = new Date(clock.unsafeCurrentTimeMillis()).toISOString()
            share({ topic, key: email, value: encodeStored({ email, reason: s.reason, event: "unsub", at }) })
          },
          // A lift, or an erasure: compaction then removes the address from the topic.
          lifted: (email) => share({ topic, key: email, value: null })
        })
        const learn = (m: Record): Effect.Effect<void> =>
          Effect.gen(function*() {
            const reason = undecodable(m)
            // Skipped, not waited on: the record can never be read, and waiting would stop the group
            // for good. Loud and counted, since it may have held a suppression (see README).
            if (reason !== undefined) {
              yield* Effect.logError(
                `suppressions: record ${m.partition}/${m.offset} of ${topic} skipped: ${reason}. If it held a suppression, this worker does not apply it, and standing consent may re-subscribe that contact: have the topic's producers use gzip, lz4 or zstd`
              )
              return yield* Metric.increment(undecodableCount)
            }
            if (m.key.startsWith(JOB_KEY) || m.key.startsWith(ERASURE_KEY)) return
            if (m.key === SNAPSHOT_KEY) {
              view.dated(m.value)
              return yield* readBackDone(m)
            }
            if (m.value === undefined || m.value === null) {
              set.learn(m.key, undefined)
              view.held(m.key, undefined)
            } else {
              const stored = decodeStored(m.value)
              if (Option.isSome(stored)) {
                set.learn(m.key, { reason: stored.value.reason, at: stored.value.at })
                view.held(m.key, stored.value)
              } else yield* Effect.logWarning(`suppressions: record ${m.partition}/${m.offset} of ${topic} is not one; skipped`)
            }
            yield* Metric.set(suppressionCount, set.size())
            yield* readBackDone(m)
          })
        // The hand-over's claims: an undecodable batch holds none this worker wrote (it compresses
        // with the client's default), so skipping one costs at most the fence of another's claim.
        const learnClaim = (m: Record): Effect.Effect<void> =>
          undecodable(m) !== undefined
            ? Effect.logWarning(`hand-over: record ${m.partition}/${m.offset} of ${handOverTopic} skipped: ${undecodable(m)}`)
            : Effect.zipRight(Effect.sync(() => fence.learn(m)), readBackDone(m))
        following = true
        yield* followTopic(learn)
        yield* followTopic(learnClaim, handOverTopic)
        yield* Metric.set(suppressionCount, set.size())
        yield* Effect.logInfo(`suppressions: ${set.size()} contacts held as unsubscribed (Mailjet and ${topic})`)
      })

    return SuppressionTopic.of({ topic, feedbackTopic, store, follow, followJobs, followErasures, fence, snapshot: view.snapshot })
  }))

  /** Provides nothing: shares bulk jobs through the topic (see `followJobs`) before delivery starts. */
  static readonly sharingJobs = Layer.scopedDiscard(
    Effect.flatMap(Effect.all([SuppressionTopic, Delivery, KafkaConfig]), ([topic, delivery, kafka]) =>
      untilReachable(topic.followJobs(delivery.jobs), kafka))
  )

  /** The group's tombstones, read from the topic before delivery starts and shared through it. */
  static readonly erasures = Layer.scoped(
    Tombstones,
    Effect.gen(function*() {
      const [topic, kafka, mailjet] = yield* Effect.all([SuppressionTopic, KafkaConfig, MailjetConfig])
      const set = makeTombstones(yield* groupSecret(mailjet.secretKey))
      yield* untilReachable(topic.followErasures(set), kafka)
      return set
    })
  )

  /**
   * Provides nothing: reads the topic into preflight's `Suppressions` before delivery starts, then
   * the list's view (SuppressionSnapshot): none read from Mailjet when the group's is fresh.
   */
  static readonly following = Layer.scopedDiscard(
    Effect.flatMap(Effect.all([SuppressionTopic, Suppressions, KafkaConfig]), ([topic, set, kafka]) =>
      Effect.zipRight(untilReachable(topic.follow(set), kafka), bringView(topic.snapshot, set)))
  )
}
