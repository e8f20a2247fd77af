/** How hard to push Mailjet and how patiently to retry. From the environment, or built in code. */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { duration, positiveInt } from "../internal/config.js"

export interface DeliverySettings {
  /** Events in flight at once; one contact's events still go one at a time, in order. */
  readonly concurrency: number
  /** Attempts per event for `MailjetUnavailable` (Signal's contract is 5). */
  readonly maxAttempts: number
  /** First retry delay; it doubles per attempt, with jitter, up to `retryMax`. */
  readonly retryBase: Duration.Duration
  readonly retryMax: Duration.Duration
  /** Requests per second across all lanes; cut on a 429 and recovered slowly. */
  readonly maxRps: number
  /** Consecutive failed calls after which Mailjet is taken to be down. */
  readonly outageThreshold: number
  /** Bulk jobs (managemanycontacts): never, always, or when the backlog outruns one call per event. */
  readonly bulk: BulkMode
  /** Contacts per bulk call. */
  readonly bulkSize: number
  /** How long a bulk job may run before its events are sent one by one; and how long a later update waits for a job that may still land. */
  readonly bulkJobTimeout: Duration.Duration
}

export type BulkMode = "auto" | "off" | "always"

/**
 * Mailjet documents no maximum; 5,000 is the largest size known to work (RudderStack's, found by
 * trial against the live API). A job's calls (the POST and its polls) are shared by all its
 * contacts, so fewer, larger jobs spend less of the call budget; larger than this is untested.
 */
export const DEFAULT_BULK_SIZE = 5000

/**
 * Mailjet publishes no limit for the contact endpoints; the one figure known is 500 calls per
 * 10 s for the Send API, with other endpoints "much lower" (README, "Why 10 requests per second"). 10 per second
 * stays well inside that; accounts with a known higher limit raise MAILJET_MAX_RPS.
 */
export const DEFAULT_MAX_RPS = 10

export const defaults: DeliverySettings = {
  concurrency: 8,
  maxAttempts: 5,
  retryBase: Duration.seconds(1),
  retryMax: Duration.seconds(30),
  maxRps: DEFAULT_MAX_RPS,
  outageThreshold: 20,
  bulk: "auto",
  bulkSize: DEFAULT_BULK_SIZE,
  bulkJobTimeout: Duration.minutes(10)
}

export const deliverySettings: Config.Config<DeliverySettings> = Config.all({
  concurrency: positiveInt("MAILJET_CONCURRENCY").pipe(Config.withDefault(defaults.concurrency)),
  maxAttempts: positiveInt("MAILJET_MAX_ATTEMPTS").pipe(Config.withDefault(defaults.maxAttempts)),
  retryBase: duration("MAILJET_RETRY_BASE").pipe(Config.withDefault(defaults.retryBase)),
  retryMax: duration("MAILJET_RETRY_MAX").pipe(Config.withDefault(defaults.retryMax)),
  maxRps: Config.number("MAILJET_MAX_RPS").pipe(
    Config.validate({ message: "must be a positive number", validation: (n) => n > 0 }),
    Config.withDefault(defaults.maxRps)
  ),
  outageThreshold: positiveInt("MAILJET_OUTAGE_THRESHOLD").pipe(Config.withDefault(defaults.outageThreshold)),
  bulk: Config.literal("auto", "off", "always")("MAILJET_BULK").pipe(Config.withDefault(defaults.bulk)),
  bulkSize: positiveInt("MAILJET_BULK_SIZE").pipe(Config.withDefault(defaults.bulkSize)),
  bulkJobTimeout: duration("MAILJET_BULK_JOB_TIMEOUT").pipe(Config.withDefault(defaults.bulkJobTimeout))
})

export class DeliveryConfig extends Context.Tag("signal-mailjet/DeliveryConfig")<DeliveryConfig, DeliverySettings>() {
  static readonly layer = Layer.effect(DeliveryConfig, deliverySettings)
  static readonly layerFrom = (settings: Partial<DeliverySettings>) =>
    Layer.succeed(DeliveryConfig, { ...defaults, ...settings })
  /** The environment, with the CLI's flags over it. */
  static readonly layerWith = (overrides: Partial<DeliverySettings>) =>
    Layer.effect(DeliveryConfig, Effect.map(deliverySettings, (s) => ({ ...s, ...overrides })))
}
