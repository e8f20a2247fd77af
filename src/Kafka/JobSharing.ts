/**
 * Bulk jobs that may still land, shared on the suppressions topic under their own keys: this
 * worker's are written as they open and tombstoned as they end; the other workers' are fenced here
 * (read from the start: a worker taking over a partition waits for the jobs its last owner left
 * running). See Fences.ts and SharedJobs.ts.
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { Delivery } from "../Delivery/Delivery.js"
import type { Fence } from "../Delivery/Fences.js"
import { undecodable } from "./Codecs.js"
import type { SuppressionsUnavailable } from "./KafkaError.js"
import { futureJobWarning, sharedJobVerdict } from "./SharedJobs.js"
import type { Outgoing } from "./SuppressionWriter.js"
import type { Record } from "./TopicReader.js"

/**
 * A job's records: one per JOB_PART contacts, so a record stays well under Kafka's 1 MB; a
 * tombstone once it was seen to end.
 */
export const JOB_KEY = "bulk-job:"
const JOB_PART = 1000
const SharedJob = Schema.parseJson(Schema.Struct({
  job: Schema.Number,
  emails: Schema.Array(Schema.String),
  origin: Schema.String,
  /** When the job was posted (ms since the epoch). */
  at: Schema.Number
}))
const encodeJob = Schema.encodeSync(SharedJob)
const decodeJob = Schema.decodeUnknownOption(SharedJob)

export const shareJobs = (o: {
  readonly topic: string
  /** This worker's own records, which it does not fence itself. */
  readonly origin: string
  readonly share: (message: Outgoing) => void
  readonly ensure: Effect.Effect<void, SuppressionsUnavailable>
  readonly follow: (handle: (m: Record) => Effect.Effect<void>) => Effect.Effect<void, SuppressionsUnavailable, Scope.Scope>
}) =>
(jobs: Context.Tag.Service<Delivery>["jobs"]) =>
  Effect.gen(function*() {
    const { origin, share, topic } = o
    yield* o.ensure
    const clock = yield* Effect.clock
    const keys = (f: Fence) => Array.from({ length: Math.ceil(f.emails.length / JOB_PART) }, (_, i) => `${JOB_KEY}${f.job}:${i}`)
    // Another worker's job, fenced here: the keys it came under, to end them all.
    const learnt = new Map<number, Set<string>>()
    jobs.observe({
      opened: (f) => {
        const at = clock.unsafeCurrentTimeMillis()
        keys(f).forEach((key, i) =>
          share({ topic, key, value: encodeJob({ job: f.job, emails: f.emails.slice(i * JOB_PART, (i + 1) * JOB_PART), origin, at }) })
        )
      },
      ended: (f) => {
        for (const key of learnt.get(f.job) ?? keys(f)) share({ topic, key, value: null })
        learnt.delete(f.job)
      }
    })
    const learn = (m: Record): Effect.Effect<void> =>
      Effect.gen(function*() {
        const reason = undecodable(m)
        if (reason !== undefined) {
          return yield* Effect.logWarning(`suppressions: record ${m.partition}/${m.offset} of ${topic} skipped: ${reason}; a bulk job it shared is not waited for`)
        }
        if (!m.key.startsWith(JOB_KEY)) return
        const job = Number(m.key.slice(JOB_KEY.length).split(":")[0])
        if (!Number.isSafeInteger(job)) return
        if (m.value === undefined || m.value === null) {
          learnt.delete(job)
          return yield* jobs.forget(job)
        }
        const shared = decodeJob(m.value)
        if (Option.isNone(shared)) return
        if (shared.value.origin === origin) return
        const verdict = sharedJobVerdict(shared.value.at, yield* clock.currentTimeMillis)
        if (verdict === "future") {
          return yield* Effect.logWarning(futureJobWarning(m.key, shared.value.job, shared.value.at, `${m.partition}/${m.offset} of ${topic}`))
        }
        if (verdict === "forgotten") return
        learnt.set(job, (learnt.get(job) ?? new Set()).add(m.key))
        yield* Effect.logInfo(`bulk job ${shared.value.job} of another worker may still land: its contacts wait for it`)
        yield* jobs.learn(shared.value.job, shared.value.emails)
      })
    yield* o.follow(learn)
  })
