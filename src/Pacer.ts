/**
 * One request budget shared by every lane: a paced token bucket (GCRA) whose rate halves on a
 * 429 and climbs back by 5% of the maximum per second, so a rate-limit storm slows everyone at
 * once instead of burning each event's attempts.
 */
import { Clock, Context, Effect, Layer } from "effect"
import { DeliveryConfig } from "./DeliveryConfig.js"

export interface PacerState {
  readonly rate: number
  readonly rateLimited: number
}

export class Pacer extends Context.Tag("signal-mailjet/Pacer")<Pacer, {
  /** Waits for this request's slot. */
  readonly take: Effect.Effect<void>
  /** Mailjet said 429: slow down. */
  readonly rateLimited: Effect.Effect<void>
  readonly state: Effect.Effect<PacerState>
}>() {
  static readonly make = (maxRps: number, options: { readonly burst?: number } = {}) =>
    Effect.sync(() => {
      const floor = Math.min(maxRps, 0.5)
      const burst = Math.max(1, options.burst ?? Math.min(10, Math.ceil(maxRps / 10)))
      let rate = maxRps
      let tat = 0 // theoretical arrival time of the next request, ms
      let adjustedAt = 0
      let cutAt = -Infinity
      let limited = 0

      const recover = (now: number) => {
        if (rate < maxRps && now > adjustedAt) {
          rate = Math.min(maxRps, rate + (maxRps * 0.05 * (now - adjustedAt)) / 1000)
        }
        adjustedAt = now
      }

      const take = Effect.flatMap(Clock.currentTimeMillis, (now) => {
        recover(now)
        const interval = 1000 / rate
        const start = Math.max(tat, now - interval * (burst - 1))
        tat = start + interval
        const wait = start - now
        return wait > 0 ? Effect.sleep(wait) : Effect.void
      })

      const rateLimited = Effect.map(Clock.currentTimeMillis, (now) => {
        limited++
        recover(now)
        // One cut per second: the 429s of requests already in flight describe the old rate.
        if (now - cutAt >= 1000) {
          cutAt = now
          rate = Math.max(floor, rate / 2)
          tat = Math.max(tat, now + 1000 / rate)
        }
      })

      return Pacer.of({ take, rateLimited, state: Effect.sync(() => ({ rate, rateLimited: limited })) })
    })

  static readonly layer = Layer.effect(Pacer, Effect.flatMap(DeliveryConfig, (c) => Pacer.make(c.maxRps)))
}
