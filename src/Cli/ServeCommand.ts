/** `signal-mailjet serve`: Signal's Kafka delivery worker for Mailjet, with /health /ready /metrics. */
import * as Command from "@effect/cli/Command"
import * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import { Delivery } from "../Delivery/Delivery.js"
import { workerStack } from "../Delivery/Stack.js"
import type { WorkerStatus } from "../Kafka/KafkaWorker.js"
import { transientRetries } from "../Mailjet/MailjetGateway.js"
import { closedWithin, retriesUntil, Shutdown } from "../Run/Shutdown.js"
import {
  bulkOption,
  concurrencyOption,
  exit,
  logFormatOption,
  missingProperties,
  presetOption,
  reportSetupErrors,
  stderr,
  withBulk,
  withConcurrency,
  withLogging
} from "./Options.js"

// A worker outlives a Mailjet blip at start: it retries until Mailjet answers, reporting not ready,
// or until SIGTERM: the request ends the wait between tries, and no try follows it.
const untilMailjetAnswers = (shutdown: Context.Tag.Service<Shutdown>) =>
  retriesUntil(
    shutdown.requested,
    transientRetries({ base: "1 second", max: "30 seconds", attempts: Infinity }).pipe(
      Schedule.tapInput((e: { readonly _tag: string; readonly message: string }) => Effect.logWarning(`preflight: ${e.message}`))
    )
  )

export const serveCommand = Command.make(
  "serve",
  {
    preset: presetOption,
    concurrency: concurrencyOption,
    bulk: bulkOption,
    logFormat: logFormatOption
  },
  (o) =>
    // Loaded on use: the Kafka client alone costs a few hundred ms of start-up for every command.
    Effect.flatMap(
      Effect.promise(() =>
        Promise.all([
          import("../Kafka/KafkaConfig.js"),
          import("../Kafka/KafkaWorker.js"),
          import("../Kafka/WorkerHttp.js"),
          import("../Kafka/SuppressionTopic.js"),
          import("../Kafka/Webhook.js")
        ])
      ),
      ([{ KafkaConfig }, { serve }, WorkerHttp, { SuppressionTopic }, { webhookCredentials }]) =>
        Effect.gen(function*() {
          const kafka = yield* KafkaConfig
          // No flags here: a worker is configured by its environment alone.
          const missing = yield* missingProperties({ createMissing: false, allowMissing: false })
          const preflightRetry = untilMailjetAnswers(yield* Shutdown)
          const status = yield* Ref.make<WorkerStatus>({ preflight: false, joined: false, paused: false })
          const suppressions = yield* SuppressionTopic
          const webhook = Option.map(yield* webhookCredentials, (credentials) => ({ credentials, store: suppressions.store }))
          // HTTP first, so /health answers while preflight waits for Mailjet; listening is part of
          // starting: a port taken by another process stops the worker before it consumes anything.
          yield* Layer.buildWithScope(
            WorkerHttp.layer(status, kafka, Option.getOrUndefined(webhook)),
            yield* Effect.scope
          ).pipe(
            Effect.catchAll((e) =>
              Effect.zipRight(
                stderr(
                  `signal-mailjet serve: cannot listen on port ${kafka.port} (${e._tag === "ServeError" ? String(e.cause) : String(e)}): another process has it. Set PORT (and HTTP_HOST) to a free one.`
                ),
                exit(2)
              )
            )
          )
          yield* serve(status).pipe(
            Effect.provide(workerStack(Delivery.layer, {
              preset: o.preset,
              overrides: { ...withConcurrency(o.concurrency), ...withBulk(o.bulk) },
              missing,
              retry: preflightRetry.schedule,
              // Suppressions from Mailjet (preflight), then from the group's topic.
              // And the group's erasures: no older event brings an erased contact back, on any partition.
              following: Layer.merge(SuppressionTopic.following, SuppressionTopic.erasures),
              // Bulk jobs that the group's other workers (or this partition's last owner) may still have landing.
              sharing: SuppressionTopic.sharingJobs
            })),
            // SIGTERM while the suppressions topic was read: nothing consumed, nothing to finish.
            Effect.catchTag("StoppedBeforeReady", () => Effect.logInfo("shut down before consuming: the suppressions topic was still being read")),
            // SIGTERM while preflight waited for Mailjet: nothing consumed, nothing to finish.
            Effect.catchIf(() => preflightRetry.stopped(), () => Effect.logInfo("shut down before consuming: Mailjet had not answered preflight")),
            // Configuration and preset problems are reported like every command's; the rest stop the worker.
            Effect.catchIf(
              (e) => !ConfigError.isConfigError(e) && e._tag !== "PresetInvalid",
              (e) => Effect.zipRight(stderr(`signal-mailjet serve: stopped: ${e.message}`), exit(2))
            )
          )
        }).pipe(
          // Built in the same scope as the rest, so that its closing is bounded too.
          (body) => Effect.flatMap(Layer.build(SuppressionTopic.layer.pipe(Layer.provideMerge(KafkaConfig.layer))), (ctx) => Effect.provide(body, ctx)),
          // Past MAILJET_SHUTDOWN_TIMEOUT's default and the closes' own bounds: a close that hangs is a bug, not a reason to stay.
          closedWithin("30 seconds"),
          reportSetupErrors,
          withLogging(o)
        )
    )
).pipe(
  Command.withDescription(
    "Run Signal's delivery worker: consume delivery-{SIGNAL_INTEGRATION_ID} from KAFKA_BROKERS in a consumer group, deliver each event, dead-letter to delivery-{id}-dlq, and commit offsets only past events that are done. HTTP on PORT (default 8080): /health, /ready, /metrics, and POST /mailjet/events for Mailjet's event callbacks (Basic auth MAILJET_WEBHOOK_USER/MAILJET_WEBHOOK_PASSWORD; off without a password): unsubscribes, spam complaints, hard bounces and blocks are shared by the group in delivery-{id}-suppressions, so standing consent does not re-subscribe them. SIGTERM finishes in-flight events, commits and leaves the group. Exits non-zero on a fatal error (401, unknown list) with the fix in the message."
  )
)
