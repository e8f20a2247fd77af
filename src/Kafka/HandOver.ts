/**
 * Whether a worker just given partitions must wait before it reads them, and why. A worker that
 * owned them may still be finishing its in-flight events: it has the shutdown deadline to finish or
 * abandon them and commit, so the new owner reads only once that long has passed since the group
 * last changed. Nobody can be finishing when this worker kept only partitions it drained itself,
 * or when it is the group's only member: a worker leaves the group only after its last commit.
 */
import { Admin } from "@platformatic/kafka"
import * as Effect from "effect/Effect"
import { connectionOptions, type KafkaSettings } from "./KafkaConfig.js"

export type HandOver =
  | { readonly _tag: "Read"; readonly why?: string }
  | { readonly _tag: "Wait"; readonly until: number }

export const handOver = (o: {
  readonly now: number
  readonly changedAt: number
  /** MAILJET_SHUTDOWN_TIMEOUT and a margin. */
  readonly handover: number
  readonly keptOnly: boolean
  /** Members of the group now; undefined when the broker did not say. */
  readonly members: number | undefined
}): HandOver => {
  const until = o.changedAt + o.handover
  if (until <= o.now) return { _tag: "Read" }
  if (o.keptOnly) return { _tag: "Read", why: "group changed: this worker kept only partitions it owned, so it resumes without the hand-over" }
  if (o.members === 1) return { _tag: "Read", why: "this worker is the group's only member: no earlier owner can still be sending, so it reads at once" }
  return { _tag: "Wait", until }
}

/** What /ready and the log say while the worker waits. */
export const waitingFor = (until: number, partitions: ReadonlyArray<number>): string =>
  `hand-over: until ${new Date(until).toISOString()}, the earlier owners of partitions ${partitions.length === 0 ? "none" : [...partitions].sort((a, b) => a - b).join(",")} may still be finishing their in-flight events (MAILJET_SHUTDOWN_TIMEOUT + 1 s after the group's last change)`

/** The group's members as the broker has them now; undefined when it cannot say (then the worker waits). */
export const groupMembers = (kafka: KafkaSettings): Effect.Effect<number | undefined> =>
  Effect.acquireUseRelease(
    Effect.sync(() => new Admin({ ...connectionOptions(kafka), clientId: `${kafka.clientId}-handover` })),
    (admin) =>
      Effect.tryPromise(() => admin.describeGroups({ groups: [kafka.groupId] })).pipe(
        Effect.map((groups) => groups.get(kafka.groupId)?.members.size),
        Effect.timeout("3 seconds"),
        Effect.orElseSucceed(() => undefined)
      ),
    (admin) => Effect.promise(() => admin.close().catch(() => undefined))
  )
