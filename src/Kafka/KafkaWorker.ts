/**
 * `serve`: Signal's delivery worker for Mailjet. Consumes `delivery-{integration_id}` in a
 * consumer group, delivers through the same engine as `deliver`, dead-letters to a Kafka topic,
 * and commits an offset only once every record before it in its partition is done (delivered,
 * dropped, or acknowledged by the dead-letter topic): at-least-once, and `managecontact` is an
 * upsert, so a redelivery after a crash is harmless.
 *
 * Longer than 300 lines: the consumer's session, its commits and the rebalance hand-over share the
 * consumer's state and its timing, and are easier to check side by side.
 */
import type { Message, MessagesStream } from "@platformatic/kafka"
import { Consumer, Producer, stringDeserializers } from "@platformatic/kafka"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Metrics from "../Delivery/Metrics.js"
import { MailjetClient } from "../Mailjet/MailjetClient.js"
import { isFatal, isTransient } from "../Mailjet/MailjetError.js"
import { Preflight } from "../Mailjet/Preflight.js"
import { MailjetGateway, transientRetries } from "../Mailjet/MailjetGateway.js"
import { Pacer } from "../Mailjet/Pacer.js"
import * as Session from "../Run/Session.js"
import { Shutdown } from "../Run/Shutdown.js"
import { fairly } from "./FairReader.js"
import { groupMembers, handOver, waitingFor } from "./HandOver.js"
import { connectionOptions, KafkaConfig, producerOptions } from "./KafkaConfig.js"
import { DeadLetterUnavailable, produceDeadLetters, readRecord } from "./Records.js"
import { kafkaFailure, KafkaUnavailable } from "./KafkaError.js"

/** What /ready and /health report. */
export interface WorkerStatus {
  readonly preflight: boolean
  readonly joined: boolean
  readonly paused: boolean
  /** What the worker waits for before it reads, and until when. */
  readonly waiting?: string
}

type Record = Message<string, string, string, string>

const rateShare = Metric.gauge("signal_mailjet_rate_share", {
  description: "This worker's share of MAILJET_MAX_RPS: the fraction of the topic's partitions it owns"
})
const consumerLag = Metric.gauge("signal_mailjet_consumer_lag", {
  description: "Records not yet committed by the group, by partition (end offset - committed offset), reported by the owner"
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

/** Past the previous owner's deadline: a request started just before it may still be answered. */
const HANDOVER_MARGIN_MS = 1_000

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e))

/** The broker could not be reached at all (a connection or a timeout), not an answer with an error. */
const unreachable = (e: unknown, depth = 0): boolean => {
  if (typeof e !== "object" || e === null || depth > 4) return false
  const { code, errors } = e as { code?: unknown; errors?: unknown }
  return code === "PLT_KFK_NETWORK" || code === "PLT_KFK_TIMEOUT" ||
    (Array.isArray(errors) && errors.some((x) => unreachable(x, depth + 1)))
}

const promise = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: kafkaFailure })

/** Commit offsets: the last done record of each partition commits its offset + 1. */
const makeCommitter = (topic: string, retryFor: Duration.Duration) => {
  const pending = new Map<number, Record>()
  const blocked = new Set<number>()
  return {
    /** In input order: a record is done, or (not attempted) its partition may not move past it. */
    mark: (record: Record, done: boolean) => {
      if (!done) blocked.add(record.partition)
      else if (!blocked.has(record.partition)) pending.set(record.partition, record)
    },
    flush: Effect.suspend(() => {
      const batch = Array.from(pending.values())
      pending.clear()
      return Effect.forEach(batch, (record) =>
        Effect.async<void, KafkaUnavailable>((resume) => {
          void record.commit((error) =>
            resume(error ? Effect.fail(new KafkaUnavailable({ detail: `commit failed: ${error instanceof Error ? error.message : String(error)}` })) : Effect.void)
          )
        }).pipe(
          // The broker refuses commits while the group is between generations; the library
          // rejoins on its own, and a commit in the new generation is accepted. Before the next
          // owner reads (it waits the hand-over), or it sends these events again.
          Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo(retryFor))),
          Effect.zipRight(Effect.logDebug(`committed ${record.partition}/${Number(record.offset) + 1}`)),
          Effect.zipRight(Metric.set(Metrics.committedOffset.pipe(Metric.tagged("topic", topic), Metric.tagged("partition", String(record.partition))), Number(record.offset) + 1)),
          // Still refused: the next owner reads these again (at-least-once).
          Effect.catchAll((e) => Effect.logWarning(e.message))
        ), { discard: true }).pipe(
          Effect.zipRight(batch.length > 0 ? Metric.set(Metrics.lastCommit, Date.now() / 1000) : Effect.void)
        )
    })
  }
}

/** Runs until SIGTERM (success) or a fatal error (failure); an outage pauses, probes and resumes. */
export const serve = (status: Ref.Ref<WorkerStatus>) =>
  Effect.gen(function*() {
    const kafka = yield* KafkaConfig
    const client = yield* MailjetClient
    const shutdown = yield* Shutdown

    // Credentials and list were checked (preflight) before joining.
    for (const m of (yield* Preflight).missing) {
      yield* Effect.logWarning(`contact property "${m.name}" is not defined in Mailjet; events that set it will be dead-lettered`)
    }
    yield* Ref.update(status, (s) => ({ ...s, preflight: true }))

    const producer = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Producer(producerOptions(kafka))
      ),
      (p) => Effect.ignore(promise(() => p.close()))
    )

    const pacer = yield* Pacer
    /** Partitions whose lag this worker reported: set to 0 once another owns them, so a sum over workers counts each once. */
    const reported = new Set<number>()
    const lagGauge = (partition: number) =>
      consumerLag.pipe(Metric.tagged("topic", kafka.topic), Metric.tagged("partition", String(partition)))
    /** Lag as the broker sees it: end offset minus the group's committed offset. Fails only when the broker cannot be reached. */
    const reportLag = (consumer: Consumer<string, string, string, string>, owned: ReadonlyArray<number>) =>
      Effect.gen(function*() {
        for (const p of reported) if (!owned.includes(p)) yield* Metric.set(lagGauge(p), 0)
        if (owned.length === 0) return
        const ask = <A>(f: () => Promise<A>) =>
          Effect.tryPromise({ try: f, catch: (e) => ({ gone: unreachable(e), error: new KafkaUnavailable({ detail: errorText(e) }) }) })
        const ends = (yield* ask(() => consumer.listOffsets({ topics: [kafka.topic] }))).get(kafka.topic) ?? []
        const committed = (yield* ask(() =>
          consumer.listCommittedOffsets({ topics: [{ topic: kafka.topic, partitions: [...owned] }] })
        )).get(kafka.topic) ?? []
        for (const p of owned) {
          const end = Number(ends[p] ?? 0n)
          const done = Number(committed[p] ?? -1n)
          // No commit yet: the whole partition is still to do.
          yield* Metric.set(lagGauge(p), end - Math.max(done, 0))
          reported.add(p)
        }
      }).pipe(
        // An answer with an error (a coordinator moving, say) is not an outage: the next report tries again.
        Effect.catchAll((e) => (e.gone ? Effect.fail(e.error) : Effect.logDebug(`lag not updated: ${e.error.message}`)))
      )

    const options = (owned: number) => ({
      topics: [kafka.topic],
      mode: "committed" as const,
      fallbackMode: "earliest" as const,
      autocommit: false,
      maxWaitTime: 500,
      // Every partition owned gets its share of each fetch, and the stream holds little beyond it.
      maxBytesPerPartition: FETCH_PARTITION_BYTES,
      maxBytes: FETCH_PARTITION_BYTES * Math.max(1, owned),
      highWaterMark: STREAM_HIGH_WATER_MARK
    })
    /** When Kafka was last found unreachable, until a session joins again. */
    let kafkaDownSince: number | undefined
    // Another worker that owned a partition we gain may still be finishing its in-flight events:
    // it has the shutdown deadline to finish or abandon them and commit, so we read only after it.
    const handover = Duration.toMillis(kafka.shutdownTimeout) + HANDOVER_MARGIN_MS

    /**
     * One consumer session, in the group until it ends; returns why it ended. Each assignment is
     * one delivery run on its own stream: a rebalance drains the run (nothing new starts, what is
     * sending finishes within the deadline), commits, and the next run reads the committed offsets
     * only after the hand-over, so no older event of a contact is sent after a newer one and
     * nothing done is sent twice. A worker that only kept partitions it just drained itself has no
     * one to wait for.
     */
    const session = Effect.scoped(Effect.gen(function*() {
      // The stream that keeps the topic subscribed: closing a consumer's last stream unsubscribes
      // it, and subscribing again would start yet another rebalance.
      let holder: MessagesStream<string, string, string, string> | undefined
      let changedAt = Date.now()
      let change = yield* Deferred.make<void>()
      const onChange = (): void => {
        changedAt = Date.now()
        Deferred.unsafeDone(change, Exit.void)
      }
      const consumer = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const c = new Consumer({
            ...connectionOptions(kafka),
            groupId: kafka.groupId,
            deserializers: stringDeserializers,
            autocommit: false,
            sessionTimeout: 10_000,
            heartbeatInterval: 1_000
          })
          // The heartbeat sees a rebalance before the library rejoins; the join ends it.
          c.on("consumer:group:rebalance", onChange)
          c.on("consumer:group:join", onChange)
          return c
        }),
        // Closing leaves the group, so partitions move to another worker at once.
        (c) =>
          Effect.zipRight(
            Ref.update(status, (s) => ({ ...s, joined: false })),
            // A broker that is down cannot take the leave: the group drops us after the session timeout.
            Effect.ignore(Effect.timeout(promise(() => new Promise<void>((ok, ko) => c.close(true, (e) => (e ? ko(e) : ok())))), "5 seconds"))
          )
      )
      holder = yield* promise(() => consumer.consume(options(1)))
      const stopping = yield* Deferred.make<void>()
      yield* Effect.forkScoped(Effect.zipRight(shutdown.requested, Deferred.succeed(stopping, undefined)))

      /** The generation and partitions of the run that last ended here. */
      let last: { readonly generation: number; readonly partitions: ReadonlyArray<number> } | undefined
      const assigned = () => (consumer.assignments ?? []).find((a) => a.topic === kafka.topic)?.partitions ?? []
      // No one else can have sent for a partition this worker owned in the generation just before,
      // having drained it itself: keeping or giving partitions away needs no hand-over.
      const keptOnly = () =>
        last !== undefined && consumer.generationId === last.generation + 1 && assigned().every((p) => last!.partitions.includes(p))

      while (true) {
        // Hand-over (HandOver.ts): quiet for `handover` since the group last changed.
        // Made before each check, so a change at any moment after it is seen: here or by the run.
        while (true) {
          change = yield* Deferred.make<void>()
          const now = Date.now()
          const decide = (members: number | undefined) => handOver({ now, changedAt, handover, keptOnly: keptOnly(), members })
          // Only a wait is worth a question to the broker: alone in the group, there is none.
          let decision = decide(undefined)
          if (decision._tag === "Wait") decision = decide(yield* groupMembers(kafka))
          if (decision._tag === "Read") {
            if (decision.why !== undefined) yield* Effect.logInfo(decision.why)
            break
          }
          const waiting = waitingFor(decision.until, assigned())
          yield* Ref.update(status, (s) => ({ ...s, waiting }))
          yield* Effect.logInfo(waiting)
          const woke = yield* Effect.raceAll([
            Effect.as(Effect.sleep(decision.until - now), "time" as const),
            Effect.as(Deferred.await(change), "change" as const),
            Effect.as(shutdown.requested, "shutdown" as const)
          ])
          if (woke === "shutdown") return Option.none()
        }
        yield* Ref.update(status, ({ waiting: _, ...s }) => s)
        const owned = assigned()
        const records = yield* promise(() => consumer.consume(options(owned.length)))
        yield* Effect.ignore(promise(() => holder!.close()))
        holder = records
        yield* Ref.update(status, (s) => ({ ...s, joined: true, paused: false }))
        kafkaDownSince = undefined
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

        const committer = makeCommitter(kafka.topic, Duration.millis(HANDOVER_MARGIN_MS))
        // The lag report is also the check that the broker answers: the consumer's stream may wait
        // on a broker that is gone without failing, while it still holds records to deliver.
        const lost = yield* Deferred.make<never, KafkaUnavailable>()
        const periodic = yield* Effect.forkScoped(Effect.all([
          // Whole or not at all: a flush interrupted between commits would lose the batch it took.
          Effect.repeat(Effect.uninterruptible(committer.flush), Schedule.spaced(kafka.commitInterval)),
          Effect.repeat(
            reportLag(consumer, owned).pipe(Effect.catchAll((e) =>
              Effect.zipRight(Ref.update(status, (s) => ({ ...s, joined: false })), Deferred.fail(lost, e))
            )),
            Schedule.spaced(LAG_INTERVAL)
          )
        ], { concurrency: 2, discard: true }))
        const rebalance = Deferred.await(change)
        // Fetched and not done: held by the fair reader, buffered by the stream, or being delivered.
        let held = 0
        let working = 0
        const showReadAhead = () => Metric.set(readAhead, held + working + records.readableLength)
        const end = yield* Session.run({
          source: ({ shutdown, stopped }) =>
            Session.readUntil(
              // Not the stream's own iterator: its return() would destroy the stream, and it stays
              // open (holding the subscription) until the next run's stream replaces it.
              Stream.fromAsyncIterable(
                fairly(records, (n) => {
                  held = n
                }),
                kafkaFailure
              ).pipe(Stream.interruptWhen(Deferred.await(lost))),
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
          Effect.provideService(Shutdown, {
            requested: Effect.raceFirst(shutdown.requested, rebalance),
            request: shutdown.request
          })
        )
        yield* Fiber.interrupt(periodic)
        // A broker found gone takes no commit: the next session reads from the last one that landed.
        if (!(yield* Deferred.isDone(lost))) yield* committer.flush
        if (Option.isSome(end.failure) || (yield* Deferred.isDone(stopping))) return end.failure
        yield* Effect.logInfo("group rebalancing: in-flight events finished and committed; resuming after the hand-over")
      }
    }))

    /** After an outage: not ready, and wait until Mailjet answers again. */
    const probe = Effect.gen(function*() {
      yield* Ref.update(status, (s) => ({ ...s, paused: true }))
      yield* Effect.logWarning("Mailjet looks down: paused consuming; probing")
      // A probe is a call like any other: through the gateway, with its slot; retried on the one
      // schedule, from 1 s up to every 30 s, for as long as Mailjet does not answer.
      const gateway = yield* MailjetGateway.fromContext
      yield* gateway.paced(client.getList).pipe(
        Effect.retry({
          schedule: transientRetries({ base: "1 second", max: "30 seconds", attempts: Infinity }),
          while: isTransient
        }),
        // The schedule never ends, so only a fatal error gets here.
        Effect.catchAll((e) => (isFatal(e) ? Effect.fail(e) : Effect.die(e))),
        Effect.raceFirst(Effect.zipRight(shutdown.requested, Effect.fail({ _tag: "ShutdownWhilePaused" as const })))
      )
      yield* Effect.logInfo("Mailjet answers again: resuming")
    })

    /**
     * Kafka unreachable (the consumer, a commit or the dead-letter topic): not ready, and a new
     * session after a backoff, from the committed offsets, until KAFKA_OUTAGE_TIMEOUT has passed.
     * True when a shutdown came meanwhile.
     */
    const rideOut = (failure: KafkaUnavailable | DeadLetterUnavailable, attempt: number) =>
      Effect.gen(function*() {
        yield* Ref.update(status, (s) => ({ ...s, joined: false }))
        const since = kafkaDownSince ??= Date.now()
        const left = Duration.toMillis(kafka.outageTimeout) - (Date.now() - since)
        if (left <= 0) {
          return yield* Effect.fail(new KafkaUnavailable({
            detail: `unreachable for longer than KAFKA_OUTAGE_TIMEOUT (${Duration.format(kafka.outageTimeout)}): ${failure.detail}`,
            ...(failure._tag === "KafkaUnavailable" && failure.kind !== undefined ? { kind: failure.kind } : {})
          }))
        }
        const wait = Math.min(left, 30_000, 500 * 2 ** Math.min(attempt, 6))
        yield* Effect.logWarning(`Kafka unreachable (${failure.detail}): not ready; trying again in ${wait} ms`)
        return yield* Effect.raceFirst(Effect.as(Effect.sleep(wait), false), Effect.as(shutdown.requested, true))
      })

    let attempt = 0
    while (true) {
      // The consumer's own calls fail the session; what it read failing ends it with the reason.
      const failure = yield* session.pipe(Effect.catchTag("KafkaUnavailable", (e) => Effect.succeed(Option.some(e))))
      if (Option.isNone(failure)) {
        yield* Effect.logInfo("shut down: offsets committed, group left")
        return
      }
      // A topic that does not exist will not appear by waiting: say so at once.
      if (failure.value._tag === "KafkaUnavailable" && failure.value.kind?._tag === "TopicMissing") {
        return yield* Effect.fail(failure.value)
      }
      if (failure.value._tag === "KafkaUnavailable" || failure.value._tag === "DeadLetterUnavailable") {
        attempt = kafkaDownSince === undefined ? 0 : attempt + 1
        if (yield* rideOut(failure.value, attempt)) return
        continue
      }
      // Mailjet answers: the next session waits for the job again, nothing to probe.
      if (failure.value._tag === "BulkJobPending") {
        yield* Effect.logWarning(`${failure.value.detail}: consuming again, its contacts still held back`)
        continue
      }
      if (failure.value._tag !== "MailjetOutage") return yield* Effect.fail(failure.value)
      const resumed = yield* Effect.either(probe)
      if (resumed._tag === "Left") {
        if (resumed.left._tag === "ShutdownWhilePaused") return
        return yield* Effect.fail(resumed.left)
      }
    }
  })
