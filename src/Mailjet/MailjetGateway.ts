/**
 * The one way to Mailjet: every call (an event's update, a bulk post and its polls, a replay's read,
 * preflight, serve's outage probe, `check` and `contact`) takes its slot from the Pacer here, feeds
 * a 429 back to it, and retries transient failures on the one schedule, `transientRetries`.
 *
 * Inside a run, a call goes through the run's `Lane`: its waits race the run's stop, a fatal answer
 * stops the run, and `outageThreshold` transient failures in a row stop it for an outage. The
 * gateway holds no state of its own (the Pacer and the lanes do), so every instance of it is the same
 * gateway: `fromContext` uses the one provided, or makes one over the context's client and Pacer.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { DeliveryConfig, defaults } from "../Delivery/DeliveryConfig.js"
import { MailjetClient } from "./MailjetClient.js"
import type { FatalError, MailjetUnavailable, RateLimited } from "./MailjetError.js"
import { Pacer } from "./Pacer.js"
import { rateLimitedCounter } from "./MailjetMetrics.js"

/** Rate-limited retries do not use up attempts, but they are bounded so no call waits forever. */
export const MAX_RATE_LIMITED_RETRIES = 50

/**
 * The one retry schedule for Mailjet calls: exponential from `base`, with full jitter (half to all of
 * each delay, so lanes that failed together do not retry together), each delay at most `max`,
 * `attempts` calls in all (`Infinity`: until it answers).
 */
export const transientRetries = (o: {
  readonly base: Duration.DurationInput
  readonly max: Duration.DurationInput
  readonly attempts: number
}): Schedule.Schedule<unknown, unknown> =>
  Schedule.exponential(o.base).pipe(
    Schedule.jitteredWith({ min: 0.5, max: 1 }),
    Schedule.modifyDelay((_, d) => Duration.min(d, Duration.decode(o.max))),
    Schedule.intersect(Schedule.recurs(o.attempts - 1))
  )

/** What a lane needs of the run it calls for. */
export interface RunHooks {
  /** Why the run stopped, if it did: said on what it does not send. */
  readonly stopped: Effect.Effect<Option.Option<string>>
  /** Completes when the run stops: every wait of its calls races it. */
  readonly onStop: Effect.Effect<unknown>
  readonly stop: (
    reason: { readonly _tag: "Fatal"; readonly error: FatalError } | { readonly _tag: "Outage"; readonly detail: string }
  ) => Effect.Effect<void>
}

/** One run's calls: its stop, and how many of its calls failed in a row. */
export interface Lane extends RunHooks {
  /** Mailjet answered: the failures in a row start again from 0. */
  readonly answered: () => void
  /** A transient failure: stops the run for an outage once `outageThreshold` calls in a row failed. */
  readonly failed: (detail: string) => Effect.Effect<void>
}

/** The run stopped while a call waited, or Mailjet answered a fatal error (which stopped it). */
export class CallStopped extends Schema.TaggedError<CallStopped>()("CallStopped", {
  reason: Schema.String,
  /** The fatal error's tag, when one stopped the run. */
  error: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return this.reason
  }
}

/** A call still failed transiently after every retry it had. */
export class RetriesExhausted extends Schema.TaggedError<RetriesExhausted>()("RetriesExhausted", {
  tries: Schema.Number,
  rateLimited: Schema.Boolean,
  last: Schema.String
}) {
  override get message(): string {
    return this.rateLimited
      ? `still rate limited after ${this.tries} tries`
      : `gave up after ${this.tries} attempts: ${this.last}`
  }
}

type Transient = RateLimited | MailjetUnavailable

/** What a GDPR erasure found: the contact, erased (`attempts` DELETEs), or no contact with that address. */
export type Erasure =
  | { readonly _tag: "Erased"; readonly id: number; readonly attempts: number }
  | { readonly _tag: "NotFound" }

export class MailjetGateway extends Context.Tag("signal-mailjet/MailjetGateway")<MailjetGateway, {
  readonly client: typeof MailjetClient.Service
  /**
   * Waits for the slot of the next `calls` calls (a replay's read is two). Only a real wait sleeps,
   * and only then races `interrupt`: a race forks two fibers, which at full speed cost more than a
   * request's own bookkeeping. False when `interrupt` came first. A wait that woke more than a slot
   * late takes a new slot, once: going now would bunch with the next calls (Pacer.late).
   */
  readonly slot: (interrupt?: Effect.Effect<unknown>, calls?: number) => Effect.Effect<boolean>
  /**
   * `slot` for one call in plain code, where the Pacer allows it (Pacer.reserveAt): the slot is
   * taken, and the wait in ms is returned (under 1: go now; else `slotAfter` waits). Undefined:
   * take the slot with `slot`.
   */
  readonly slotNow: (now: number) => number | undefined
  /** The rest of `slot` once its slot is taken with `slotNow`. */
  readonly slotAfter: (wait: number, interrupt?: Effect.Effect<unknown>) => Effect.Effect<boolean>
  /** Mailjet said 429: counted, and the Pacer slows every lane. */
  readonly rateLimited: Effect.Effect<void>
  /** A run's lane, with its own count of failures in a row. */
  readonly lane: (run: RunHooks) => Lane
  /**
   * One call for a run: its slot (racing the stop), the call; a fatal answer stops the run and
   * fails with CallStopped, a transient one is counted (429: the Pacer; else toward an outage).
   */
  readonly call: <A, E extends { readonly _tag: string; readonly message: string }>(
    lane: Lane,
    effect: Effect.Effect<A, E>
  ) => Effect.Effect<A, Exclude<E, FatalError> | CallStopped>
  /**
   * `call` until it succeeds: 429s again at the Pacer's slower rate (at most 50), unavailable on the
   * run's `transientRetries` (MAILJET_MAX_ATTEMPTS, MAILJET_RETRY_BASE, MAILJET_RETRY_MAX).
   */
  readonly retrying: <A, E extends { readonly _tag: string; readonly message: string }>(
    lane: Lane,
    effect: Effect.Effect<A, E>
  ) => Effect.Effect<A, Exclude<E, FatalError | Transient> | CallStopped | RetriesExhausted>
  /**
   * A GDPR erasure for a run: the contact looked up by its address (Mailjet's DELETE answers 200 for
   * any ID, so only the look-up can say "not found"), then erased by its ID; each call `retrying`.
   */
  readonly erase: (lane: Lane, email: string) => Effect.Effect<Erasure, CallStopped | RetriesExhausted>
  /** The run's retry schedule, for a loop that drives it itself (`Schedule.driver`). */
  readonly schedule: Schedule.Schedule<unknown, unknown>
  /** One call outside any run (preflight, a watcher, a probe, `check`): its slot, and a 429 slows the Pacer. */
  readonly paced: <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
}>() {
  /**
   * Over the context's `MailjetClient`; paced by its `Pacer` and retried by its `DeliveryConfig`
   * when there are ones (`check` has neither: its few calls go unpaced, with the default retries).
   */
  static readonly make = Effect.gen(function*() {
    const client = yield* MailjetClient
    const pacer = Option.getOrUndefined(yield* Effect.serviceOption(Pacer))
    const config = Option.getOrElse(yield* Effect.serviceOption(DeliveryConfig), () => defaults)
    return makeGateway(client, pacer, config)
  })

  static readonly layer = Layer.effect(MailjetGateway, MailjetGateway.make)

  /** The gateway provided, else one over the context's parts: the same calls either way. */
  static readonly fromContext = Effect.flatMap(
    Effect.serviceOption(MailjetGateway),
    Option.match({ onNone: () => MailjetGateway.make, onSome: Effect.succeed })
  )
}

const makeGateway = (
  client: typeof MailjetClient.Service,
  pacer: typeof Pacer.Service | undefined,
  config: typeof DeliveryConfig.Service
): typeof MailjetGateway.Service => {
  const rateLimited = pacer === undefined
    ? rateLimitedCounter(Effect.succeed(1))
    : Effect.zipRight(rateLimitedCounter(Effect.succeed(1)), pacer.rateLimited)

  const sleep = (wait: number, interrupt: Effect.Effect<unknown> | undefined) =>
    interrupt === undefined
      ? Effect.as(Effect.sleep(wait), true)
      : Effect.raceFirst(Effect.as(Effect.sleep(wait), true), Effect.as(interrupt, false))

  const now = Effect.succeed(true)
  // The one place a call takes a slot. A wait under a millisecond goes now: a timer's grain is a
  // millisecond (a sleep of 0.01 ms sleeps 1 ms, with a race), and the Pacer has set the next slot
  // a whole interval after this one all the same, so nothing bunches. At a high MAILJET_MAX_RPS
  // most calls had such a wait: a timer and two fibers each (BENCHMARKS.md).
  const slotAfter = (wait: number, interrupt?: Effect.Effect<unknown>): Effect.Effect<boolean> =>
    wait < 1 || pacer === undefined ? now : Effect.gen(function*() {
      const due = (yield* Clock.currentTimeMillis) + wait
      if (!(yield* sleep(wait, interrupt))) return false
      if (!(yield* pacer.late(due))) return true
      // Once: a loop that is always a little late still sends.
      const again = yield* pacer.reserve
      return again <= 0 ? true : yield* sleep(again, interrupt)
    })
  const slot = (interrupt?: Effect.Effect<unknown>, calls = 1): Effect.Effect<boolean> =>
    pacer === undefined
      ? now
      : Effect.flatMap(calls > 1 ? Effect.zipRight(pacer.reserve, pacer.reserve) : pacer.reserve, (wait) => slotAfter(wait, interrupt))
  const reserveAt = pacer === undefined ? undefined : Pacer.reserveAt(pacer)
  const slotNow = (at: number): number | undefined => pacer === undefined ? 0 : reserveAt?.(at)

  const lane = (run: RunHooks): Lane => {
    let failures = 0
    let last = ""
    return {
      ...run,
      answered: () => {
        failures = 0
      },
      failed: (detail) =>
        Effect.suspend(() => {
          failures++
          last = detail
          return failures >= config.outageThreshold
            ? run.stop({ _tag: "Outage", detail: `${failures} calls in a row failed, last: ${last}` })
            : Effect.void
        })
    }
  }

  const call = <A, E extends { readonly _tag: string; readonly message: string }>(
    lane: Lane,
    effect: Effect.Effect<A, E>
  ): Effect.Effect<A, Exclude<E, FatalError> | CallStopped> =>
    Effect.gen(function*() {
      while (true) {
        const stopped = yield* lane.stopped
        if (Option.isSome(stopped)) return yield* new CallStopped({ reason: stopped.value })
        if (yield* slot(lane.onStop)) break
      }
      return yield* Effect.matchEffect(effect, {
        onSuccess: (a) => {
          lane.answered()
          return Effect.succeed(a)
        },
        onFailure: (e): Effect.Effect<never, Exclude<E, FatalError> | CallStopped> => {
          if (e._tag === "Unauthorized" || e._tag === "ListNotFound") {
            return Effect.zipRight(
              lane.stop({ _tag: "Fatal", error: e as unknown as FatalError }),
              new CallStopped({ reason: e.message, error: e._tag })
            )
          }
          const counted = e._tag === "RateLimited"
            ? rateLimited
            : e._tag === "MailjetUnavailable"
            ? lane.failed((e as unknown as MailjetUnavailable).detail)
            : Effect.sync(lane.answered)
          return Effect.zipRight(counted, Effect.fail(e as Exclude<E, FatalError>))
        }
      })
    })

  const schedule = transientRetries({ base: config.retryBase, max: config.retryMax, attempts: config.maxAttempts })

  const retrying = <A, E extends { readonly _tag: string; readonly message: string }>(lane: Lane, effect: Effect.Effect<A, E>) =>
    Effect.gen(function*() {
      let limited = 0
      let failures = 0
      const backoff = yield* Schedule.driver(schedule)
      while (true) {
        const r = yield* Effect.either(call(lane, effect))
        if (r._tag === "Right") return r.right
        const e = r.left
        if (e._tag === "RateLimited") {
          if (++limited > MAX_RATE_LIMITED_RETRIES) return yield* new RetriesExhausted({ tries: limited, rateLimited: true, last: e.message })
          continue
        }
        if (e._tag !== "MailjetUnavailable") return yield* Effect.fail(e as Exclude<E, FatalError | Transient> | CallStopped)
        failures++
        // A stop during the wait is seen by the next call.
        const next = yield* Effect.either(Effect.raceFirst(backoff.next(e), Effect.asVoid(lane.onStop)))
        if (next._tag === "Left") return yield* new RetriesExhausted({ tries: failures, rateLimited: false, last: e.message })
      }
    })

  const erase = (lane: Lane, email: string): Effect.Effect<Erasure, CallStopped | RetriesExhausted> =>
    Effect.gen(function*() {
      const found = yield* retrying(lane, client.getContact(email))
      if (Option.isNone(found)) return { _tag: "NotFound" } as const
      const id = found.value.id
      let attempts = 0
      yield* retrying(lane, Effect.suspend(() => (attempts++, client.eraseContact(id))))
      return { _tag: "Erased", id, attempts } as const
    })

  const paced = <A, E extends { readonly _tag: string }>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.zipRight(slot(), Effect.tapError(effect, (e) => (e._tag === "RateLimited" ? rateLimited : Effect.void)))

  return { client, slot, slotNow, slotAfter, rateLimited, lane, call, retrying, erase, schedule, paced }
}
