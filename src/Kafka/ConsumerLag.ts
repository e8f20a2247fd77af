/**
 * The group's lag as the broker sees it (end offset - committed offset), reported by each
 * partition's owner. Asking is also how the worker learns that the broker is gone: the consumer's
 * stream may wait on a broker that is gone without failing.
 */
import type { Consumer } from "@platformatic/kafka"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import { KafkaUnavailable } from "./KafkaError.js"

const consumerLag = Metric.gauge("signal_mailjet_consumer_lag", {
  description: "Records not yet committed by the group, by partition (end offset - committed offset), reported by the owner"
})

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e))

/** The broker could not be reached at all (a connection or a timeout), not an answer with an error. */
export const unreachable = (e: unknown, depth = 0): boolean => {
  if (typeof e !== "object" || e === null || depth > 4) return false
  const { code, errors } = e as { code?: unknown; errors?: unknown }
  return code === "PLT_KFK_NETWORK" || code === "PLT_KFK_TIMEOUT" ||
    (Array.isArray(errors) && errors.some((x) => unreachable(x, depth + 1)))
}

/** Reports the lag of the partitions owned; fails only when the broker cannot be reached. */
export const makeLagReport = (topic: string) => {
  /** Partitions whose lag this worker reported: set to 0 once another owns them, so a sum over workers counts each once. */
  const reported = new Set<number>()
  const gauge = (partition: number) => consumerLag.pipe(Metric.tagged("topic", topic), Metric.tagged("partition", String(partition)))
  return (consumer: Consumer<string, string, string, string>, owned: ReadonlyArray<number>) =>
    Effect.gen(function*() {
      for (const p of reported) if (!owned.includes(p)) yield* Metric.set(gauge(p), 0)
      if (owned.length === 0) return
      const ask = <A>(f: () => Promise<A>) =>
        Effect.tryPromise({ try: f, catch: (e) => ({ gone: unreachable(e), error: new KafkaUnavailable({ detail: errorText(e) }) }) })
      const ends = (yield* ask(() => consumer.listOffsets({ topics: [topic] }))).get(topic) ?? []
      const committed = (yield* ask(() => consumer.listCommittedOffsets({ topics: [{ topic, partitions: [...owned] }] }))).get(topic) ?? []
      for (const p of owned) {
        const end = Number(ends[p] ?? 0n)
        const done = Number(committed[p] ?? -1n)
        // No commit yet: the whole partition is still to do.
        yield* Metric.set(gauge(p), end - Math.max(done, 0))
        reported.add(p)
      }
    }).pipe(
      // An answer with an error (a coordinator moving, say) is not an outage: the next report tries again.
      Effect.catchAll((e) => (e.gone ? Effect.fail(e.error) : Effect.logDebug(`lag not updated: ${e.error.message}`)))
    )
}
