/** The suppressions topic made on first use: compacted, keyed by email, beside the delivery topic. */
import { Admin } from "@platformatic/kafka"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { connectionOptions, type KafkaConfig } from "./KafkaConfig.js"
import { SuppressionsUnavailable } from "./KafkaError.js"
import { closing } from "./TopicReader.js"

/** Creates the topic compacted when it is missing; leaves an existing one as it is. */
export const ensureCompacted = (
  kafka: Context.Tag.Service<KafkaConfig>,
  topic: string,
  attempt: <A>(f: () => Promise<A>) => Effect.Effect<A, SuppressionsUnavailable>
) =>
  Effect.acquireUseRelease(
    Effect.sync(() => new Admin({ ...connectionOptions(kafka) })),
    (admin) =>
      Effect.gen(function*() {
        const existing = yield* attempt(() => admin.listTopics())
        if (existing.includes(topic)) return
        // A typo in the integration id must not leave a topic behind it.
        if (!existing.includes(kafka.topic)) {
          return yield* Effect.fail(new SuppressionsUnavailable({ topic, detail: `no topic ${kafka.topic}`, deliveryTopicMissing: kafka.topic }))
        }
        yield* attempt(() =>
          admin.createTopics({
            topics: [topic],
            partitions: 1,
            configs: [{ name: "cleanup.policy", value: "compact" }]
          })
        ).pipe(
          // Another worker of the group created it meanwhile (workers start together).
          Effect.catchAll((e) =>
            Effect.flatMap(attempt(() => admin.listTopics()), (now) => (now.includes(topic) ? Effect.void : Effect.fail(e)))
          )
        )
      }),
    // Bounded: an admin whose broker is gone may never answer its close.
    (admin) => closing("admin", () => admin.close(), `topic ${topic}`)
  )
