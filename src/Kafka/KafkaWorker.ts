/**
 * `serve`: Signal's delivery worker for Mailjet. Consumes `delivery-{integration_id}` in a
 * consumer group, delivers through the same engine as `deliver`, dead-letters to a Kafka topic,
 * and commits an offset only once every record before it in its partition is done (delivered,
 * dropped, or acknowledged by the dead-letter topic): at-least-once, and `managecontact` is an
 * upsert, so a redelivery after a crash is harmless.
 *
 * The worker's protocols each have their file: the consumer's session (KafkaSession), the
 * rebalance hand-over (HandOver), the commits (Committer) and a Kafka outage (Outage). This one
 * runs sessions one after another and decides what each one's end means.
 */
import { Producer } from "@platformatic/kafka"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { MailjetClient } from "../Mailjet/MailjetClient.js"
import { isFatal, isTransient } from "../Mailjet/MailjetError.js"
import { Preflight } from "../Mailjet/Preflight.js"
import { MailjetGateway, transientRetries } from "../Mailjet/MailjetGateway.js"
import { Pacer } from "../Mailjet/Pacer.js"
import { Shutdown } from "../Run/Shutdown.js"
import { makeLagReport } from "./ConsumerLag.js"
import { KafkaConfig, producerOptions } from "./KafkaConfig.js"
import { session } from "./KafkaSession.js"
import { makeOutage } from "./Outage.js"
import { closing } from "./TopicReader.js"
import type { WorkerStatus } from "./WorkerStatus.js"

export type { WorkerStatus } from "./WorkerStatus.js"

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
      Effect.sync(() => new Producer(producerOptions(kafka))),
      // Bounded: a producer whose broker is gone may never answer its close.
      (p) => closing("producer", () => p.close(), "worker")
    )
    const pacer = yield* Pacer
    const outage = makeOutage(kafka.outageTimeout)
    const deps = { kafka, status, pacer, producer, reportLag: makeLagReport(kafka.topic), joined: outage.recovered }

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

    while (true) {
      // The consumer's own calls fail the session; what it read failing ends it with the reason.
      const failure = yield* session(deps).pipe(Effect.catchTag("KafkaUnavailable", (e) => Effect.succeed(Option.some(e))))
      if (Option.isNone(failure)) {
        yield* Effect.logInfo("shut down: offsets committed, group left")
        return
      }
      // A topic that does not exist will not appear by waiting: say so at once.
      if (failure.value._tag === "KafkaUnavailable" && failure.value.kind?._tag === "TopicMissing") {
        return yield* Effect.fail(failure.value)
      }
      if (failure.value._tag === "KafkaUnavailable" || failure.value._tag === "DeadLetterUnavailable") {
        yield* Ref.update(status, (s) => ({ ...s, joined: false }))
        if (yield* outage.rideOut(failure.value, shutdown.requested)) return
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
