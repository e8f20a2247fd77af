/**
 * The worker's commits: a partition's offset moves past a record only once it and every record
 * before it in its partition are done (delivered, dropped, or dead-lettered). A record that was
 * not attempted holds its partition where it is until the next run reads it again.
 */
import type { Message } from "@platformatic/kafka"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Metrics from "../Delivery/Metrics.js"
import { KafkaUnavailable } from "./KafkaError.js"

type Record = Message<string, string, string, string>

export interface Committer {
  /** In input order: a record is done, or (not attempted) its partition may not move past it. */
  readonly mark: (record: Record, done: boolean) => void
  /**
   * Commits what was marked since the last flush: the last done record of each partition, offset
   * + 1; a commit the broker refuses is retried for `retryFor`, then left for the next flush.
   * Whether every commit landed.
   */
  readonly flush: (retryFor: Duration.DurationInput) => Effect.Effect<boolean>
  /** The offset each partition committed last (the next one to read), for the hand-over's release. */
  readonly committed: () => ReadonlyMap<number, bigint>
}

export const makeCommitter = (topic: string): Committer => {
  const pending = new Map<number, Record>()
  const blocked = new Set<number>()
  const committed = new Map<number, bigint>()
  const commitOne = (retryFor: Duration.DurationInput) => (record: Record) =>
    Effect.async<void, KafkaUnavailable>((resume) => {
      void record.commit((error) =>
        resume(error ? Effect.fail(new KafkaUnavailable({ detail: `commit failed: ${error instanceof Error ? error.message : String(error)}` })) : Effect.void)
      )
    }).pipe(
      // The broker refuses commits while the group is between generations; the library rejoins on
      // its own, and a commit in the new generation is accepted. Before the next owner reads (it
      // waits for this worker's release), or it sends these events again.
      Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo(retryFor))),
      Effect.zipRight(Effect.sync(() => committed.set(record.partition, record.offset + 1n))),
      Effect.zipRight(Effect.logDebug(`committed ${record.partition}/${Number(record.offset) + 1}`)),
      Effect.zipRight(Metric.set(
        Metrics.committedOffset.pipe(Metric.tagged("topic", topic), Metric.tagged("partition", String(record.partition))),
        Number(record.offset) + 1
      )),
      Effect.as(true),
      // Still refused: it stays to commit at the next flush (unless a later record of its partition
      // already waits), so the run's last flush, before the hand-over's release, still tries it.
      // Dropped, the partition's offset stayed behind what this worker sent, and its next owner
      // sent those events again. Refused even then, the next owner reads them again (at-least-once).
      Effect.catchAll((e) =>
        Effect.zipRight(
          Effect.sync(() => {
            if (!pending.has(record.partition)) pending.set(record.partition, record)
          }),
          Effect.as(Effect.logWarning(e.message), false)
        )
      )
    )
  return {
    mark: (record, done) => {
      if (!done) blocked.add(record.partition)
      else if (!blocked.has(record.partition)) pending.set(record.partition, record)
    },
    flush: (retryFor) => Effect.suspend(() => {
      const batch = Array.from(pending.values())
      pending.clear()
      return Effect.forEach(batch, commitOne(retryFor)).pipe(
        Effect.tap(() =>
          batch.length > 0 ? Effect.flatMap(Clock.currentTimeMillis, (now) => Metric.set(Metrics.lastCommit, now / 1000)) : Effect.void
        ),
        Effect.map((landed) => landed.every((ok) => ok))
      )
    }),
    committed: () => committed
  }
}
