/** The counter of Mailjet's 429s, kept where the gateway counts them; Delivery's Metrics re-exports it. */
import * as Metric from "effect/Metric"

export const rateLimitedCounter = Metric.counter("signal_mailjet_rate_limited_total", {
  description: "429 answers from Mailjet",
  incremental: true
})
