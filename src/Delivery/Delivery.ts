/**
 * Event → decode → consent → map → (pace, per-contact order) → Mailjet → outcome.
 *
 * `run` turns a stream of NDJSON lines into one `Result` per line, in input order. Events of one
 * contact are sent one after another in input order; other contacts go in parallel up to the
 * configured concurrency. Fatal errors, an outage or `stop` end the sending: what is in flight
 * finishes, everything after it is `not-attempted`, and the stream still yields a result for
 * every line it reads.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import { Consent } from "../Consent.js"
import { orderedConcurrently } from "./Lanes.js"
import { coerceProperties } from "../Preset/Datatypes.js"
import { DeliveryConfig, type DeliverySettings } from "./DeliveryConfig.js"
import { MailjetConfig } from "../Mailjet/MailjetConfig.js"
import type { ManageContactBody } from "../Mailjet/MailjetClient.js"
import { MailjetClient } from "../Mailjet/MailjetClient.js"
import type { FatalError, MailjetError } from "../Mailjet/MailjetError.js"
import { eventKey, Mapping, requestBody } from "../Mapping.js"
import * as Metrics from "./Metrics.js"
import type { Outcome, Result } from "../Domain/Outcome.js"
import { Pacer } from "./Pacer.js"
import type { Action, Datatype, Preset } from "../Preset/Preset.js"
import type { SignalEvent } from "../Domain/SignalEvent.js"
import { decodeSignalEvent, eventLabel, parseSignalEvent, rawMessageId } from "../Domain/SignalEvent.js"
import { keptByReference } from "../Domain/Outcome.js"

/** Why a run stopped sending. */
export type StopReason =
  | { readonly _tag: "Fatal"; readonly error: FatalError }
  | { readonly _tag: "Outage"; readonly detail: string }
  | { readonly _tag: "Shutdown" }

export const stopMessage = (s: StopReason): string =>
  s._tag === "Fatal"
    ? s.error.message
    : s._tag === "Outage"
    ? `Mailjet looks down (${s.detail}); stopped sending. Rerun later: redelivery is safe.`
    : "stopped by a shutdown signal before this event was sent; rerun to deliver it"

/** What `prepare` decides before any I/O: a final outcome, or a request to send. */
export type Prepared =
  | { readonly _tag: "Done"; readonly result: Result }
  | {
    readonly _tag: "Send"
    readonly line: number
    readonly raw: unknown
    readonly text: string | undefined
    readonly messageId: string | undefined
    readonly event: string
    /** The preset's name of the event: bounded, fit for a metric tag. */
    readonly mapped: string
    readonly email: string
    readonly action: Action
    readonly body: ManageContactBody
  }

/**
 * Decode, consent, map and fit the values to `datatypes`. Pure and synchronous, so it runs in
 * input order, and `--dry-run` shows exactly what would be sent.
 */
export const prepare = (
  input: {
    readonly line: number
    readonly raw: unknown
    /** The line as read; absent for a value handed to `deliver`. */
    readonly text?: string
    readonly event: Either.Either<SignalEvent, string>
  },
  resolveConsent: (e: SignalEvent) => "Granted" | "Withdrawn" | "Unknown",
  preset: Preset,
  map: Context.Tag.Service<Mapping>["map"],
  datatypes: ReadonlyMap<string, Datatype>
): Prepared => {
  const { line, raw, text } = input
  const messageId = rawMessageId(raw)
  const done = (event: string | undefined, outcome: Outcome): Prepared => ({
    _tag: "Done",
    result: { line, raw, text, messageId, event, outcome }
  })
  if (Either.isLeft(input.event)) {
    const reason = Metrics.maskEmails(keptByReference(raw) ?? input.event.left)
    return done(undefined, { outcome: "dead-lettered", error: "MalformedEvent", reason, attempts: 0 })
  }
  const event = input.event.right
  const label = eventLabel(event)
  const mapped = map(event, resolveConsent(event))
  if (mapped._tag === "Dropped") return done(label, { outcome: "dropped", reason: mapped.reason })
  const { upsert } = mapped
  const properties = coerceProperties(upsert.properties, datatypes)
  if (Either.isLeft(properties)) {
    return done(label, {
      outcome: "dead-lettered",
      error: "InvalidContact",
      reason: Metrics.maskEmails(`${properties.left}; fix the event or the property's datatype, then replay`),
      attempts: 0
    })
  }
  return {
    _tag: "Send",
    line,
    raw,
    text,
    messageId,
    event: label,
    mapped: preset.events.get(eventKey(event)!)?.name ?? label,
    email: upsert.email,
    action: upsert.action,
    body: requestBody(upsert, properties.right) as unknown as ManageContactBody
  }
}

/** `prepare` for one NDJSON line: what `run`, `--dry-run` and the benchmark all start from. */
export const prepareLine = (
  text: string,
  line: number,
  resolveConsent: (e: SignalEvent) => "Granted" | "Withdrawn" | "Unknown",
  mapping: Context.Tag.Service<Mapping>,
  datatypes: ReadonlyMap<string, Datatype>
): Prepared =>
  prepare(
    Either.match(parseSignalEvent(text), {
      onLeft: ({ raw, reason }) => ({ line, raw, text, event: Either.left(reason) }),
      onRight: ({ event, raw }) => ({ line, raw, text, event: Either.right(event) })
    }),
    resolveConsent,
    mapping.preset,
    mapping.map,
    datatypes
  )

type StreamItem<S> = S extends Stream.Stream<infer A, infer _E, infer _R> ? A : never

/** Tracks consecutive failed calls across all lanes; a success resets it. */
const makeHealth = (threshold: number) => {
  let failures = 0
  let last = ""
  return {
    success: () => {
      failures = 0
    },
    /** True once `threshold` calls in a row have failed. */
    failure: (detail: string): boolean => {
      failures++
      last = detail
      return failures >= threshold
    },
    describe: () => `${failures} calls in a row failed, last: ${last}`
  }
}

/** Rate-limited retries do not use up attempts, but they are bounded so no event waits forever. */
const MAX_RATE_LIMITED_RETRIES = 50

export interface RunState {
  readonly stopped: Effect.Effect<Option.Option<StopReason>>
  /** Ends sending: in-flight events finish, later ones are `not-attempted`. First reason wins. */
  readonly stop: (reason: StopReason) => Effect.Effect<void>
  /** Completes when the run is stopped: waits (pacing, backoff) race it so a stop is prompt. */
  readonly onStop: Effect.Effect<StopReason>
  /** Starts nothing new: events already sending finish (retries included), the rest are not attempted. */
  readonly drain: Effect.Effect<void>
  readonly draining: Effect.Effect<boolean>
}

export const makeRunState: Effect.Effect<RunState> = Effect.gen(function*() {
  const stopped = yield* Deferred.make<StopReason>()
  const draining = yield* Deferred.make<void>()
  return {
    stopped: Effect.flatMap(
      Deferred.poll(stopped),
      Option.match({ onNone: () => Effect.succeedNone, onSome: Effect.asSome })
    ),
    stop: (reason) => Effect.asVoid(Deferred.succeed(stopped, reason)),
    onStop: Deferred.await(stopped),
    drain: Effect.asVoid(Deferred.succeed(draining, undefined)),
    draining: Deferred.isDone(draining)
  }
})

export class Delivery extends Context.Tag("signal-mailjet/Delivery")<Delivery, {
  /** One event (a parsed JSON value), for embedding. Only fatal errors fail. */
  readonly deliver: (event: unknown) => Effect.Effect<Outcome, FatalError>
  /** NDJSON lines in, one result per line out, in input order. Never fails on Mailjet's account. */
  readonly run: <E, R>(lines: Stream.Stream<string, E, R>, state?: RunState) => Stream.Stream<Result, E, R>
  /**
   * Any items (Kafka records) in, each with its result, in input order: so whoever commits
   * progress knows that everything before an item is done once the item comes out.
   */
  readonly runTagged: <M, E, R>(
    items: Stream.Stream<M, E, R>,
    read: (m: M) => { readonly line: number; readonly text: string },
    state?: RunState
  ) => Stream.Stream<readonly [M, Result], E, R>
  /** Datatypes Mailjet reported (preflight), used to fit values; the preset's otherwise. */
  readonly useDatatypes: (datatypes: ReadonlyMap<string, Datatype>) => Effect.Effect<void>
}>() {
  /** Needs its parts: `MailjetClient`, `Consent`, `Mapping`, `Pacer`, `DeliveryConfig`. */
  static readonly layer = Layer.effect(Delivery, Effect.suspend(() => make))

  /**
   * Delivery with every part read from the current ConfigProvider (the environment by default),
   * and the parts kept in the output. The host brings a `FileSystem` (for a preset file); the
   * client keeps its own connections to Mailjet.
   */
  static readonly live = (
    options: { readonly preset?: Option.Option<string>; readonly overrides?: Partial<DeliverySettings> } = {}
  ) =>
    Delivery.layer.pipe(
      Layer.provideMerge(Layer.mergeAll(MailjetClient.layer, Consent.layer, Mapping.layer(options.preset), Pacer.layer)),
      Layer.provideMerge(Layer.mergeAll(MailjetConfig.layer, DeliveryConfig.layerWith(options.overrides ?? {})))
    )
}

const make = Effect.gen(function*() {
  const client = yield* MailjetClient
  const consent = yield* Consent
  const mapping = yield* Mapping
  const config = yield* DeliveryConfig
  const pacer = yield* Pacer
  const datatypes = yield* Ref.make<ReadonlyMap<string, Datatype>>(mapping.preset.datatypes)

  const backoff = (failures: number) =>
    Effect.flatMap(Random.next, (r) => {
      const base = Duration.toMillis(config.retryBase) * 2 ** (failures - 1)
      // Full jitter keeps retrying lanes from moving in lockstep.
      return Effect.sleep(Math.min(Duration.toMillis(config.retryMax), base * (0.5 + r / 2)))
    })

  /** Sends one request until it is done; fails only with a fatal error. */
  const send = (
    p: Extract<Prepared, { _tag: "Send" }>,
    state: RunState,
    health: ReturnType<typeof makeHealth>
  ): Effect.Effect<Outcome, FatalError> =>
    Effect.gen(function*() {
      let attempts = 0
      let failures = 0
      let limited = 0
      while (true) {
        const stopped = yield* state.stopped
        if (Option.isSome(stopped)) {
          return {
            outcome: "not-attempted",
            reason: stopMessage(stopped.value),
            ...(attempts > 0 ? { attempts } : {})
          } as const
        }
        if (attempts === 0 && (yield* state.draining)) {
          return { outcome: "not-attempted", reason: stopMessage({ _tag: "Shutdown" }) } as const
        }
        // A stop during the wait is seen at the top of the loop. Only a real wait is raced: a race
        // forks two fibers, which at full speed cost more than the request's own bookkeeping.
        const wait = yield* pacer.reserve
        if (
          wait > 0 &&
          Option.isNone(yield* Effect.raceFirst(Effect.asSome(Effect.sleep(wait)), Effect.as(state.onStop, Option.none())))
        ) {
          continue
        }
        attempts++
        const started = yield* Clock.currentTimeMillis
        const result = yield* Effect.either(client.manageContact(p.body))
        const elapsed = (yield* Clock.currentTimeMillis) - started
        yield* Metrics.requestDuration(Effect.succeed(elapsed))
        yield* Metrics.attempts(Effect.succeed(1))
        if (Either.isRight(result)) {
          health.success()
          return { outcome: "delivered", action: p.action, status: result.right.status, attempts } as const
        }
        const error: MailjetError = result.left
        switch (error._tag) {
          case "Unauthorized":
          case "ListNotFound":
            return yield* Effect.fail(error)
          case "PropertyMissing":
          case "InvalidContact":
            health.success()
            return { outcome: "dead-lettered", error: error._tag, reason: error.message, attempts } as const
          case "RateLimited":
            yield* Metrics.rateLimited(Effect.succeed(1))
            yield* pacer.rateLimited
            if (++limited > MAX_RATE_LIMITED_RETRIES) {
              return {
                outcome: "dead-lettered",
                error: error._tag,
                reason: `still rate limited after ${limited} tries: ${error.message}`,
                attempts
              } as const
            }
            continue
          case "MailjetUnavailable":
            if (health.failure(error.detail)) {
              yield* state.stop({ _tag: "Outage", detail: health.describe() })
            }
            if (++failures >= config.maxAttempts) {
              return {
                outcome: "dead-lettered",
                error: error._tag,
                reason: `gave up after ${attempts} attempts: ${error.message}`,
                attempts
              } as const
            }
            yield* Effect.logDebug("retrying").pipe(
              Effect.annotateLogs({ email: Metrics.maskEmail(p.email), attempt: attempts, error: error.detail })
            )
            yield* Effect.raceFirst(backoff(failures), Effect.asVoid(state.onStop))
        }
      }
    })

  /**
   * Per-contact order: each event waits for the previous event of the same contact. Tickets are
   * taken in the sequential stage, so the chain follows input order; the map holds only contacts
   * with an event in flight. A ticket's Deferred is made only when a later event of the same
   * contact has to wait for it: most events have none, and a Deferred costs a few µs to make.
   */
  interface Ticket {
    released: boolean
    next: Deferred.Deferred<void> | undefined
  }
  const tails = new Map<string, Ticket>()
  const takeTicket = (email: string) => {
    const previous = tails.get(email)
    const mine: Ticket = { released: false, next: undefined }
    tails.set(email, mine)
    const release = Effect.suspend(() => {
      mine.released = true
      if (tails.get(email) === mine) tails.delete(email)
      return mine.next === undefined ? Effect.void : Deferred.succeed(mine.next, undefined)
    })
    if (previous === undefined || previous.released) return { wait: Effect.void, release }
    previous.next ??= Deferred.unsafeMake<void>(FiberId.none)
    return { wait: Deferred.await(previous.next), release }
  }

  const finish = (p: Extract<Prepared, { _tag: "Send" }>, outcome: Outcome): Result => ({
    line: p.line,
    raw: p.raw,
    text: p.text,
    messageId: p.messageId,
    event: p.event,
    outcome
  })

  const logResult = (r: Result, mapped: string, email: string | undefined) => {
    const o = r.outcome
    const count = Metrics.countOutcome(mapped, o)
    if (o.outcome !== "dead-lettered") return count
    return Effect.zipRight(
      count,
      Effect.logWarning(`dead-lettered: ${o.reason}`).pipe(
        Effect.annotateLogs({
          line: r.line,
          event: r.event ?? "?",
          error: o.error,
          ...(email === undefined ? {} : { email: Metrics.maskEmail(email) })
        })
      )
    )
  }

  const runTagged = <M, E, R>(
    items: Stream.Stream<M, E, R>,
    read: (m: M) => { readonly line: number; readonly text: string },
    given?: RunState
  ): Stream.Stream<readonly [M, Result], E, R> =>
    Stream.unwrap(Effect.gen(function*() {
      const state = given ?? (yield* makeRunState)
      const health = makeHealth(config.outageThreshold)
      const types = yield* Ref.get(datatypes)
      const decided = items.pipe(
        // Sequential and pure: decisions and per-contact tickets are taken in input order.
        Stream.map((item) => {
          const { line, text } = read(item)
          const prepared = prepareLine(text, line, consent.resolve, mapping, types)
          return [item, prepared._tag === "Done" ? prepared : { ...prepared, ticket: takeTicket(prepared.email) }] as const
        })
      )
      const settle = ([item, p]: StreamItem<typeof decided>): Effect.Effect<readonly [M, Result]> => {
        if (p._tag === "Done") {
          return Effect.as(logResult(p.result, "unmapped", undefined), [item, p.result] as const)
        }
        return p.ticket.wait.pipe(
          Effect.zipRight(send(p, state, health)),
          Effect.catchAll((error) =>
            Effect.as(state.stop({ _tag: "Fatal", error }), {
              outcome: "not-attempted",
              error: error._tag,
              reason: error.message
            } as const)
          ),
          Effect.map((o) => [item, finish(p, o)] as const),
          Effect.tap(([, r]) => logResult(r, p.mapped, p.email)),
          Effect.ensuring(p.ticket.release)
        )
      }
      return orderedConcurrently(decided, settle, config.concurrency)
    }))

  const run = <E, R>(lines: Stream.Stream<string, E, R>, given?: RunState): Stream.Stream<Result, E, R> =>
    Stream.suspend(() => {
      let physical = 0
      return lines.pipe(
        // Line numbers count every physical line, so they point into the file; blank lines are no events.
        Stream.map((text) => ({ text, line: ++physical })),
        Stream.filter(({ text }) => text.trim() !== ""),
        (numbered) => runTagged(numbered, (x) => x, given),
        Stream.map(([, r]) => r)
      )
    })

  const deliver = (raw: unknown): Effect.Effect<Outcome, FatalError> =>
    Effect.gen(function*() {
      const state = yield* makeRunState
      const p = prepare(
        { line: 1, raw, event: decodeSignalEvent(raw) },
        consent.resolve,
        mapping.preset,
        mapping.map,
        yield* Ref.get(datatypes)
      )
      if (p._tag === "Done") return p.result.outcome
      const { release, wait } = takeTicket(p.email)
      return yield* wait.pipe(Effect.zipRight(send(p, state, makeHealth(config.outageThreshold))), Effect.ensuring(release))
    })

  return Delivery.of({
    deliver,
    run,
    runTagged,
    useDatatypes: (types) => Ref.update(datatypes, (current) => new Map([...current, ...types]))
  })
})

