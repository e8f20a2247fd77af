/** The suppressions topic made on first use: compacted, keyed by email, beside the delivery topic. */
import { Admin } from "@platformatic/kafka"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { connectionOptions, type KafkaConfig } from "./KafkaConfig.js"
import { SuppressionsUnavailable } from "./KafkaError.js"
import { closing } from "./TopicReader.js"

/** How long after a failed create the topic is looked for, and how often the create is tried again. */
const RELOOK = Duration.millis(500)
const CREATE_AGAIN = Schedule.intersect(Schedule.spaced(Duration.seconds(1)), Schedule.recurs(4))

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
        const listed = Effect.map(attempt(() => admin.listTopics()), (now) => now.includes(topic))
        yield* attempt(() =>
          admin.createTopics({
            topics: [topic],
            partitions: 1,
            configs: [{ name: "cleanup.policy", value: "compact" }]
          })
        ).pipe(
          // Another worker of the group may have created it meanwhile (workers start together), and
          // a broker may list a new topic only a moment after answering, or refuse a create for a
          // while (seen on CI: a CreateTopics error, the topic not listed): look, then try again.
          Effect.catchAll((e) => Effect.flatMap(Effect.zipRight(Effect.sleep(RELOOK), listed), (now) => (now ? Effect.void : Effect.fail(e)))),
          Effect.retry(CREATE_AGAIN)
        )
      }),
    // Bounded: an admin whose broker is gone may never answer its close.
    (admin) => closing("admin", () => admin.close(), `topic ${topic}`)
  )
