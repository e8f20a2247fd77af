/** The counters `serve` exposes, and the masking every log line uses for emails. */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import type { Outcome } from "../Domain/Outcome.js"

const outcomesOptions = { description: "Events by outcome, event and reason (or error)", incremental: true } as const
export const outcomes = Metric.counter("signal_mailjet_events_total", outcomesOptions)
export const attempts = Metric.counter("signal_mailjet_attempts_total", {
  description: "HTTP attempts made to managecontact",
  incremental: true
})
/** Counted by the Mailjet gateway, where every 429 comes back. */
export { rateLimitedCounter as rateLimited } from "../Mailjet/MailjetMetrics.js"
export const requestDuration = Metric.histogram(
  "signal_mailjet_request_duration_ms",
  MetricBoundaries.exponential({ start: 5, factor: 2, count: 12 }),
  "Duration of one managecontact attempt in milliseconds"
)

// Tagged metrics are cached: one key per combination, not one allocation per event. Each is made
// from a key that carries its tags (the same key `outcomes.pipe(Metric.tagged(…))` resolves to, so
// the same series), because a counter tagged with `Metric.tagged` builds and hashes a new key on
// every update.
const tagged = new Map<string, Metric.Metric.Counter<number>>()
const outcomeCounter = (outcome: string, event: string, reason: string) => {
  const key = `${outcome}\u0000${event}\u0000${reason}`
  let m = tagged.get(key)
  if (m === undefined) {
    m = Metric.fromMetricKey(
      MetricKey.taggedWithLabels(MetricKey.counter("signal_mailjet_events_total", outcomesOptions), [
        MetricLabel.make("outcome", outcome),
        MetricLabel.make("event", event),
        MetricLabel.make("reason", reason)
      ])
    )
    tagged.set(key, m)
  }
  return m
}

/** `event` must be of bounded cardinality: the preset's name for it, or "unmapped". */
export const countOutcome = (event: string, o: Outcome): Effect.Effect<void> => Metric.increment(counterOf(event, o))

/**
 * `countOutcome`, done now rather than as an Effect: the per-event path counts without running one.
 * `labels`: the run's fiber's metric labels (`Effect.tagMetrics`), read once per run, which
 * `Metric.increment` would read per call.
 */
export const countOutcomeNow = (event: string, o: Outcome, labels: ReadonlyArray<MetricLabel.MetricLabel>): void =>
  counterOf(event, o).unsafeUpdate(1, labels)

/** One managecontact attempt, counted now: `attempts` and `requestDuration`, as countOutcomeNow. */
export const countAttemptNow = (elapsedMs: number, labels: ReadonlyArray<MetricLabel.MetricLabel>): void => {
  requestDuration.unsafeUpdate(elapsedMs, labels)
  attempts.unsafeUpdate(1, labels)
}

/**
 * The last few outcomes' counters: a bulk window's events share an outcome object a job and action,
 * and the key (a string an event) is made only for an outcome not among them.
 */
const SHARED = 4
const lastOutcomes: Array<Outcome | undefined> = new Array(SHARED).fill(undefined)
const lastEvents: Array<string> = new Array(SHARED).fill("")
const lastCounters: Array<Metric.Metric.Counter<number> | undefined> = new Array(SHARED).fill(undefined)
let next = 0

const counterOf = (event: string, o: Outcome): Metric.Metric.Counter<number> => {
  for (let k = 0; k < SHARED; k++) if (lastOutcomes[k] === o && lastEvents[k] === event) return lastCounters[k]!
  const counter = keyedCounter(event, o)
  lastOutcomes[next] = o
  lastEvents[next] = event
  lastCounters[next] = counter
  next = (next + 1) % SHARED
  return counter
}

const keyedCounter = (event: string, o: Outcome) =>
  outcomeCounter(
    o.outcome,
    event,
    o.outcome === "delivered"
      ? o.partial !== undefined ? `${o.action}+${o.partial.error}` : o.demoted === undefined ? o.action : `${o.action}+demoted`
      : o.outcome === "dropped"
      ? o.reason
      : o.outcome === "erased" || o.outcome === "not-found"
      ? o.action
      : o.error ?? "stopped"
  )

/** Masking lives in Domain (every layer masks); re-exported here for the public `Metrics` namespace. */
export { maskEmail, maskEmails } from "../Domain/Mask.js"

export const inFlight = Metric.gauge("signal_mailjet_in_flight_events", {
  description: "Events read and not yet done"
})
export const lastCommit = Metric.gauge("signal_mailjet_last_commit_timestamp_seconds", {
  description: "When offsets were last committed to Kafka (Unix seconds)"
})
export const committedOffset = Metric.gauge("signal_mailjet_committed_offset", {
  description: "The last committed offset by partition"
})
export const bulkJobsUnfinished = Metric.gauge("signal_mailjet_bulk_jobs_unfinished", {
  description: "Bulk jobs whose end was not seen (past MAILJET_BULK_JOB_TIMEOUT, or a stop), watched until they end: their contacts' later updates wait"
})
