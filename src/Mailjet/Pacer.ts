/**
 * One request budget shared by every lane: a paced token bucket (GCRA) whose rate halves on a
 * 429 and climbs back by 5% of the maximum per second, so a rate-limit storm slows everyone at
 * once instead of burning each event's attempts.
 *
 * Requests are spaced evenly at 95% of the maximum, with no burst above it: a limiter counts
 * requests as they arrive, arrival times jitter (a pause on either side bunches them), and at 100%
 * with a burst the first second and every jitter drew a 429, each costing a halving and ten
 * seconds of climb (measured: 0.75 of the limit reached; now 0.95 and no 429). A lane that wakes
 * more than a slot late takes a new slot rather than go out with the next ones: a stall of the event
 * loop otherwise sent its slots as one burst (measured: 202 in one second against 200).
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { DeliveryConfig } from "../Delivery/DeliveryConfig.js"

/** The share of the rate actually paced (see above). */
const HEADROOM = 0.95

/** `reserve` as plain code, at a time the caller read: for the Pacers `make` made, by their `reserve`. */
const reservesAt = new WeakMap<Effect.Effect<number>, (now: number) => number>()

export class Pacer extends Context.Tag("signal-mailjet/Pacer")<Pacer, {
  /**
   * Takes this request's slot without waiting for it: succeeds with the milliseconds until the slot
   * (0: now). The caller sleeps that long, so one that must stay interruptible by something else
   * (a stop) races only the sleep, and only when there is one.
   */
  readonly reserve: Effect.Effect<number>
  /**
   * After waiting for a slot that was due at `slot` (ms): true when the wait ended more than one
   * slot late (a stalled event loop, a GC pause). Sending then would go out together with the next
   * slots, which a per-second limiter counts as one burst; the caller takes another slot instead.
   */
  readonly late: (slot: number) => Effect.Effect<boolean>
  /** Mailjet said 429: slow down. */
  readonly rateLimited: Effect.Effect<void>
  /**
   * Paces at `fraction` (0..1) of the maximum from now on: a worker's part of a budget shared by
   * a consumer group. The 429 back-off keeps working on top, relative to the share.
   */
  readonly share: (fraction: number) => Effect.Effect<void>
  /** No slot is reserved ahead of now: background work (SuppressionSnapshot) takes slots the sends leave. */
  readonly idle: Effect.Effect<boolean>
}>() {
  static readonly make = (maxRps: number) =>
    Effect.sync(() => {
      let max = maxRps
      let rate = maxRps
      let tat = 0 // theoretical arrival time of the next request, ms
      let adjustedAt = 0
      let cutAt = -Infinity

      const recover = (now: number) => {
        if (rate < max && now > adjustedAt) {
          rate = Math.min(max, rate + (max * 0.05 * (now - adjustedAt)) / 1000)
        }
        adjustedAt = now
      }

      const reserveAt = (now: number) => {
        recover(now)
        const interval = 1000 / (rate * HEADROOM)
        const start = Math.max(tat, now)
        tat = start + interval
        return Math.max(0, start - now)
      }
      const reserve = Effect.map(Clock.currentTimeMillis, reserveAt)
      reservesAt.set(reserve, reserveAt)

      const late = (slot: number) => Effect.map(Clock.currentTimeMillis, (now) => now - slot > 1000 / (rate * HEADROOM))

      const rateLimited = Effect.map(Clock.currentTimeMillis, (now) => {
        recover(now)
        // One cut per second: the 429s of requests already in flight describe the old rate.
        if (now - cutAt >= 1000) {
          cutAt = now
          rate = Math.max(Math.min(max, 0.5), rate / 2)
          tat = Math.max(tat, now + 1000 / rate)
        }
      })

      const share = (fraction: number) =>
        Effect.sync(() => {
          // No share (no partition): nothing is sent, so any positive rate does; a share of 0
          // would make the next slot infinitely far.
          const next = maxRps * Math.min(1, Math.max(fraction, 1e-3))
          // A back-off in progress carries over, scaled.
          rate = (rate / max) * next
          max = next
        })

      // The next slot is free now: nobody has reserved ahead.
      const idle = Effect.map(Clock.currentTimeMillis, (now) => tat <= now)

      return Pacer.of({ reserve, late, rateLimited, share, idle })
    })

  /**
   * The Pacer's `reserve` as plain code (`now`: the caller's clock), when it is the one `make` made:
   * the per-event path takes its slot without an Effect. A Pacer with a `reserve` of its own (a
   * host's, a test's that counts) has none, so every slot still goes through its `reserve`.
   */
  static readonly reserveAt = (pacer: typeof Pacer.Service): ((now: number) => number) | undefined => reservesAt.get(pacer.reserve)

  static readonly layer = Layer.effect(Pacer, Effect.flatMap(DeliveryConfig, (c) => Pacer.make(c.maxRps)))
}
