/**
 * One consumer session of `serve`, in the group until it ends; it returns why it ended. Each
 * assignment is one delivery run on its own stream: a rebalance drains the run (nothing new
 * starts, what is sending finishes within the deadline), commits, and the next run reads the
 * committed offsets only after the hand-over (HandOver.ts), so no older event of a contact is sent
 * after a newer one and nothing done is sent twice.
 */
import type { MessagesStream, Producer } from "@platformatic/kafka"
import { Consumer, stringDeserializers } from "@platformatic/kafka"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Metrics from "../Delivery/Metrics.js"
import type { Pacer } from "../Mailjet/Pacer.js"
import * as Session from "../Run/Session.js"
import { Shutdown } from "../Run/Shutdown.js"
import { makeCommitter } from "./Committer.js"
import type { makeLagReport } from "./ConsumerLag.js"
import { fairly } from "./FairReader.js"
import { awaitHandOver, awaitRelease, groupMemberIds, groupMembers, makeGroupChanges } from "./HandOver.js"
import { connectionOptions, type KafkaSettings } from "./KafkaConfig.js"
import { kafkaFailure, KafkaUnavailable, type SuppressionsUnavailable } from "./KafkaError.js"
import { produceDeadLetters, readRecord } from "./Records.js"
import { SuppressionTopic } from "./SuppressionTopic.js"
import type { WorkerStatus } from "./WorkerStatus.js"

const rateShare = Metric.gauge("signal_mailjet_rate_share", {
  description: "This worker's share of MAILJET_MAX_RPS: the fraction of the topic's partitions it owns"
})
const readAhead = Metric.gauge("signal_mailjet_read_ahead", {
  description: "Records fetched from Kafka and not yet done: held for their turn, or being delivered"
})
const LAG_INTERVAL = "2 seconds"

/**
 * What one fetch may bring per partition: Kafka's default largest record batch (message.max.bytes),
 * so a batch that large is fetched in its turn like any other; fetching it only when the partitions
 * before it are empty would hold its partition back. Read-ahead is at most this per partition owned.
 */
const FETCH_PARTITION_BYTES = 1_048_588
/** Records the consumer stream holds before it stops fetching (on top of one fetch answer). */
const STREAM_HIGH_WATER_MARK = 64

/** How long storing the hand-over's claims or their release may take. */
const FENCE_WRITE = Duration.seconds(10)

/** Past the previous owner's deadline: a request started just before it may still be answered. */
export const HANDOVER_MARGIN_MS = 1_000

/** The claims could not be stored: the broker that holds the delivery topic is the one to fix. */
const asKafka = (e: SuppressionsUnavailable) => new KafkaUnavailable({ detail: e.detail, ...(e.unreachable ? { kind: { _tag: "Unreachable" as const } } : {}) })

const promise = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: kafkaFailure })

const options = (topic: string, owned: number) => ({
  topics: [topic],
  mode: "committed" as const,
  fallbackMode: "earliest" as const,
  autocommit: false,
  maxWaitTime: 500,
  // Every partition owned gets its share of each fetch, and the stream holds little beyond it.
  maxBytesPerPartition: FETCH_PARTITION_BYTES,
  maxBytes: FETCH_PARTITION_BYTES * Math.max(1, owned),
  highWaterMark: STREAM_HIGH_WATER_MARK
})

export interface SessionDeps {
  readonly kafka: KafkaSettings
  readonly status: Ref.Ref<WorkerStatus>
  readonly pacer: Context.Tag.Service<Pacer>
  readonly producer: Producer<string, string, string, string>
  readonly reportLag: ReturnType<typeof makeLagReport>
  /** A run started: the broker answers again. */
  readonly joined: Effect.Effect<void>
}

export const session = (deps: SessionDeps) =>
  Effect.scoped(Effect.gen(function*() {
    const { kafka, pacer, producer, status } = deps
    const shutdown = yield* Shutdown
    const { fence } = yield* SuppressionTopic
    const changes = yield* makeGroupChanges
    // Another worker that owned a partition we gain may still be finishing its in-flight events:
    // it has the shutdown deadline to finish or abandon them and commit, so we read only after it.
    const handover = Duration.toMillis(kafka.shutdownTimeout) + HANDOVER_MARGIN_MS
    // How long after a change this worker may take to release its claims: its drain, its last commit
    // (retried for `handover`), the release itself. Said in each claim: a newcomer whose own timeout
    // is shorter still waits that long for it.
    const releasedWithin = Duration.toMillis(kafka.shutdownTimeout) + handover + Duration.toMillis(FENCE_WRITE)
    const consumer = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const c = new Consumer({
          ...connectionOptions(kafka),
          groupId: kafka.groupId,
          deserializers: stringDeserializers,
          autocommit: false,
          sessionTimeout: Duration.toMillis(kafka.sessionTimeout),
          heartbeatInterval: 1_000
        })
        // The heartbeat sees a rebalance before the library rejoins; the join ends it.
        c.on("consumer:group:rebalance", changes.changed)
        c.on("consumer:group:join", changes.changed)
        return c
      }),
      // Closing leaves the group, so partitions move to another worker at once.
      (c) =>
        Effect.zipRight(
          Ref.update(status, (s) => ({ ...s, joined: false })),
          // A broker that is down cannot take the leave: the group drops us after the session timeout.
          // Interruptible: a release runs uninterruptibly, and the timeout would wait for the close.
          Effect.ignore(Effect.timeout(Effect.interruptible(promise(() => new Promise<void>((ok, ko) => c.close(true, (e) => (e ? ko(e) : ok()))))), "5 seconds"))
        )
    )
    // The stream that keeps the topic subscribed: closing a consumer's last stream unsubscribes
    // it, and subscribing again would start yet another rebalance.
    let holder: MessagesStream<string, string, string, string> = yield* promise(() => consumer.consume(options(kafka.topic, 1)))
    const stopping = yield* Deferred.make<void>()
    yield* Effect.forkScoped(Effect.zipRight(shutdown.requested, Deferred.succeed(stopping, undefined)))

    /** The generation and partitions of the run that last ended here. */
    let last: { readonly generation: number; readonly partitions: ReadonlyArray<number> } | undefined
    const assigned = () => (consumer.assignments ?? []).find((a) => a.topic === kafka.topic)?.partitions ?? []
    // No one else can have sent for a partition this worker owned in the generation just before,
    // having drained it itself: keeping or giving partitions away needs no hand-over.
    const keptOnly = () =>
      last !== undefined && consumer.generationId === last.generation + 1 && assigned().every((p) => last!.partitions.includes(p))

    const waiting = (text: string | undefined) => Ref.update(status, ({ waiting: _, ...s }) => (text === undefined ? s : { ...s, waiting: text }))
    /** Every claim released, once what was read is committed; a failure is only said (the claims go void when this worker leaves the group). */
    // Bounded: a broker that is gone may not answer the writer for minutes, and the session must end.
    const released = <A>(a: A, stop = true) =>
      fence.release.pipe(
        Effect.timeoutFail({
          duration: stop ? HANDOVER_MARGIN_MS : FENCE_WRITE,
          onTimeout: () => ({ message: `not stored within ${Duration.format(stop ? HANDOVER_MARGIN_MS : FENCE_WRITE)}` })
        }),
        Effect.catchAll((e) => Effect.logWarning(`hand-over: partitions not released (${e.message}); the claims go void once this worker leaves the group`)),
        Effect.as(a)
      )

    while (true) {
      // The fence: each worker claims its partitions before reading them, so whoever gains them next
      // waits for this worker's release; it reads once no earlier owner claims them (or, for one no
      // longer in the group, after the deadline), and past that only once no live member does.
      const stopped = yield* awaitHandOver({
        changes,
        handover,
        keptOnly,
        assigned,
        claim: Effect.suspend(() => fence.claim(assigned(), consumer.generationId, consumer.memberId ?? "", releasedWithin)).pipe(
          Effect.mapError(asKafka),
          Effect.timeoutFail({
            duration: FENCE_WRITE,
            onTimeout: () => new KafkaUnavailable({ detail: `the hand-over's claims were not stored within ${Duration.format(FENCE_WRITE)}` })
          })
        ),
        claimed: () => fence.held(assigned()).length > 0,
        members: groupMembers(kafka),
        waiting,
        stop: shutdown.requested
      })
      if (stopped) return yield* released(Option.none())
      const owned = assigned()
      const fenced = yield* awaitRelease({
        changes,
        held: () => fence.held(owned),
        members: groupMemberIds(kafka),
        cap: 2 * handover,
        waiting,
        stop: shutdown.requested
      })
      if (fenced === "stop") return yield* released(Option.none())
      if (fenced === "change") {
        yield* released(undefined, false)
        continue
      }
      const records = yield* promise(() => consumer.consume(options(kafka.topic, owned.length)))
      yield* Effect.ignore(promise(() => holder.close()))
      holder = records
      yield* Ref.update(status, (s) => ({ ...s, joined: true, paused: false }))
      yield* deps.joined
      last = { generation: consumer.generationId, partitions: [...owned] }
      yield* Effect.logInfo(
        `consuming ${kafka.topic} as group ${kafka.groupId}: partitions ${owned.length === 0 ? "none" : [...owned].sort((a, b) => a - b).join(",")} (generation ${consumer.generationId})`
      )

      // Mailjet limits per API key: the group shares MAILJET_MAX_RPS by partitions owned.
      const total = (yield* promise(() => consumer.metadata({ topics: [kafka.topic] }))).topics.get(kafka.topic)?.partitionsCount ?? 0
      const share = total === 0 ? 0 : owned.length / total
      yield* pacer.share(share)
      yield* Metric.set(rateShare, share)
      yield* Effect.logInfo(`rate share ${owned.length}/${total} of MAILJET_MAX_RPS`)

      const committer = makeCommitter(kafka.topic)
      // The lag report is also the check that the broker answers: the consumer's stream may wait
      // on a broker that is gone without failing, while it still holds records to deliver.
      const lost = yield* Deferred.make<never, KafkaUnavailable>()
      const periodic = yield* Effect.forkScoped(Effect.all([
        // Whole or not at all: a flush interrupted between commits would lose the batch it took.
        Effect.repeat(Effect.uninterruptible(committer.flush(HANDOVER_MARGIN_MS)), Schedule.spaced(kafka.commitInterval)),
        Effect.repeat(
          deps.reportLag(consumer, owned).pipe(Effect.catchAll((e) =>
            Effect.zipRight(Ref.update(status, (s) => ({ ...s, joined: false })), Deferred.fail(lost, e))
          )),
          Schedule.spaced(LAG_INTERVAL)
        )
      ], { concurrency: 2, discard: true }))
      const rebalance = changes.next
      // Fetched and not done: held by the fair reader, buffered by the stream, or being delivered.
      let held = 0
      let working = 0
      const showReadAhead = () => Metric.set(readAhead, held + working + records.readableLength)
      const end = yield* Session.run({
        source: ({ shutdown, stopped }) =>
          Session.readUntil(
            // Not the stream's own iterator: its return() would destroy the stream, and it stays
            // open (holding the subscription) until the next run's stream replaces it.
            Stream.fromAsyncIterable(fairly(records, (n) => {
              held = n
            }), kafkaFailure).pipe(Stream.interruptWhen(Deferred.await(lost))),
            Effect.raceFirst(shutdown, stopped)
          ).pipe(
            Stream.tap((r) =>
              Effect.zipRight(
                Effect.zipRight(Metric.increment(Metrics.inFlight), Effect.suspend(() => (working++, showReadAhead()))),
                Effect.logDebug(`record ${r.partition}/${r.offset}`)
              )
            )
          ),
        read: readRecord,
        sink: (items) =>
          Effect.gen(function*() {
            // Not stored, nothing of the chunk is committed: the run ends, and the records are read again.
            yield* produceDeadLetters(producer, kafka.deadLetterTopic, items)
            // Not attempted: its partition may not move past it.
            for (const [record, result] of items) committer.mark(record, result.outcome.outcome !== "not-attempted")
            yield* Metric.incrementBy(Metrics.inFlight, -items.length)
            working -= items.length
            yield* showReadAhead()
          }),
        shutdownTimeout: kafka.shutdownTimeout
      }).pipe(
        // A rebalance drains the run like a shutdown does.
        Effect.provideService(Shutdown, { requested: Effect.raceFirst(shutdown.requested, rebalance), request: shutdown.request })
      )
      yield* Fiber.interrupt(periodic)
      // A broker found gone takes no commit (the next session reads from the last one that landed)
      // and no release: this worker's claims go void once the group drops it.
      if (!(yield* Deferred.isDone(lost))) {
        const stop = yield* Deferred.isDone(stopping)
        // On a rebalance the next owner reads after this worker's release, which follows its last
        // commit: worth retrying that commit through the rebalance, as long as the hand-over would
        // have been. On a stop, the deadline comes first.
        const flushed = committer.flush(stop ? HANDOVER_MARGIN_MS : handover)
        // Still refused, it is tried once more: the client rejoins the group for a refused commit,
        // and a leader's rejoin is one more rebalance, so the group settled only once those tries
        // ended (seen: 13 s of rebalances while one commit was retried, the partitions after it
        // committed at once). Released unlanded, its events were sent again by the next owner.
        yield* stop ? flushed : Effect.repeat(flushed, { until: (landed) => landed, times: 1 })
        yield* released(undefined, stop)
      }
      if (Option.isSome(end.failure) || (yield* Deferred.isDone(stopping))) return end.failure
      yield* Effect.logInfo("group rebalancing: in-flight events finished and committed; resuming after the hand-over")
    }
  })).pipe(
    // One span per session: coarse, so the per-record path stays untraced.
    Effect.withSpan("KafkaSession.session", { attributes: { topic: deps.kafka.topic, group: deps.kafka.groupId } })
  )
