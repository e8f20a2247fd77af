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
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { Consent } from "../Consent.js"
import { orderedConcurrently } from "./Lanes.js"
import { coerceValue, fitProperties } from "../Preset/Datatypes.js"
import { DeliveryConfig, type DeliverySettings } from "./DeliveryConfig.js"
import { MailjetConfig } from "../Mailjet/MailjetConfig.js"
import type { ManageContactBody } from "../Mailjet/MailjetClient.js"
import { MailjetClient } from "../Mailjet/MailjetClient.js"
import type { FatalError, InvalidContact, MailjetError, PropertyMissing } from "../Mailjet/MailjetError.js"
import { eventKey, Mapping, requestBody } from "../Mapping.js"
import * as Metrics from "./Metrics.js"
import type { Outcome, PartialUpdate, Result } from "../Domain/Outcome.js"
import { Pacer } from "./Pacer.js"
import type { Datatype } from "../Preset/Datatypes.js"
import type { Action, Preset } from "../Preset/Preset.js"
import { LAST_EVENT_PROPERTY, PropertyTypes } from "../Preset/PropertyTypes.js"
import { type SuppressionSet, Suppressions } from "../Suppressions.js"
import { guardReplay } from "./ReplayGuard.js"
import type { SignalEvent } from "../Domain/SignalEvent.js"
import { decodeSignalEvent, eventLabel, parseSignalEvent, rawMessageId } from "../Domain/SignalEvent.js"
import { keptByReference } from "../Domain/Outcome.js"

/** Many calls in a row failed: a run stops spending attempts and ends with this error. */
export class MailjetOutage extends Schema.TaggedError<MailjetOutage>()("MailjetOutage", { detail: Schema.String }) {
  override get message(): string {
    return `Mailjet looks down (${this.detail}); stopped sending. Rerun later: redelivery is safe.`
  }
}

/** What ends a run early, in `run`'s error channel once every event read has its result. */
export type RunStopped = FatalError | MailjetOutage

/** One input event as a run reads it. */
export interface Item {
  readonly line: number
  readonly text: string
  /** A replayed dead letter of refused properties: send only these (see `onlyProperties`). */
  readonly only?: ReadonlyArray<string> | undefined
  /** A replayed event: what Mailjet holds decides what of it may still apply (see ReplayGuard). */
  readonly replay?: boolean | undefined
}

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
    /** Properties already left out because their values cannot be sent. */
    readonly partial: PartialUpdate | undefined
    /** Said on the outcome line when the action sent is not the event's own. */
    readonly note?: string
    /** The preset fixes the action: not standing consent (see Suppressions). */
    readonly explicit: boolean
    /** When the event happened (ms), if it says: what places a replay (see ReplayGuard). */
    readonly eventAt: number | undefined
    /** A replay, of the whole event or of its refused properties alone: guarded before it is sent. */
    readonly replay?: "event" | "properties"
    readonly demoted?: string
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
  const { line, raw } = input
  const text = input.text
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
  const at = event.timestamp === undefined ? undefined : coerceValue("datetime", event.timestamp)
  const eventAt = at === undefined || Either.isLeft(at) ? undefined : Date.parse(String(at.right))
  // Once Mailjet has the marker, every update says when its event happened.
  const { fitted, rejected } = fitProperties(
    eventAt !== undefined && datatypes.has(LAST_EVENT_PROPERTY)
      ? { ...upsert.properties, [LAST_EVENT_PROPERTY]: new Date(eventAt).toISOString() }
      : upsert.properties,
    datatypes
  )
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
    explicit: upsert.explicit,
    eventAt,
    body: requestBody(upsert, fitted) as unknown as ManageContactBody,
    partial: rejected.length === 0 ? undefined : {
      properties: rejected.map((r) => r.name),
      error: "InvalidContact",
      reason: `${rejected.map((r) => r.reason).join("; ")}; fix the event or the property's datatype, then replay`
    }
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

/** A sent event's result, once its outcome is known. */
const resultOf = (p: Extract<Prepared, { _tag: "Send" }>, outcome: Outcome): Result => ({
  line: p.line,
  raw: p.raw,
  text: p.text,
  messageId: p.messageId,
  event: p.event,
  outcome
})

/**
 * A dead letter of refused properties (`only`), replayed: those properties alone, with `addnoforce`,
 * which leaves the subscription as it is, since the event's action landed when it was first sent.
 */
export const onlyProperties = (p: Extract<Prepared, { _tag: "Send" }>, only: ReadonlyArray<string>): Prepared => {
  const result = (outcome: Outcome): Prepared => ({ _tag: "Done", result: resultOf(p, outcome) })
  // Sending properties needs an action on the list, and this event took the contact out of it.
  if (p.action === "remove") return result({ outcome: "dropped", reason: "the event removed the contact from the list; its properties are not sent again" })
  const names = new Set(only.map((n) => n.toLowerCase()))
  const kept = Object.entries(p.body.Properties ?? {}).filter(([name]) => names.has(name.toLowerCase()))
  const refused = p.partial?.properties.filter((name) => names.has(name.toLowerCase())) ?? []
  if (kept.length === 0 && refused.length === 0) {
    return result({ outcome: "dropped", reason: "none of the dead-lettered properties is mapped from this event any more" })
  }
  const { Properties: _, ...rest } = p.body
  return {
    ...p,
    action: "addnoforce",
    replay: "properties",
    note: `replayed properties only (${only.join(", ")}); the event's own action (${p.action}) landed when it was first delivered`,
    body: { ...rest, Action: "addnoforce", ...(kept.length === 0 ? {} : { Properties: Object.fromEntries(kept) }) },
    partial: refused.length === 0 ? undefined : { ...p.partial!, properties: refused }
  }
}

/**
 * Standing consent (`addforce` from consent granted on an ordinary event) does not re-subscribe a
 * suppressed contact: it is sent as `addnoforce`, which updates the contact and keeps the
 * unsubscribe. Called in input order; an `unsub` suppresses, an explicit `addforce` lifts.
 */
export const applySuppressions = (
  p: Extract<Prepared, { _tag: "Send" }>,
  suppressions: SuppressionSet
): Extract<Prepared, { _tag: "Send" }> => {
  if (p.action === "unsub") {
    suppressions.add(p.email, { reason: `unsubscribed by the event on line ${p.line}` })
    return p
  }
  if (p.action !== "addforce") return p
  if (p.explicit) {
    suppressions.lift(p.email)
    return p
  }
  const suppressed = suppressions.get(p.email)
  if (suppressed === undefined) return p
  return { ...p, action: "addnoforce", body: { ...p.body, Action: "addnoforce" }, demoted: suppressed.reason }
}

/** Physical line numbers, so they point into the file, for the lines that are not blank (no events). */
export const numbered = <E, R>(lines: Stream.Stream<string, E, R>) =>
  Stream.suspend(() => {
    let physical = 0
    return lines.pipe(
      Stream.map((text) => ({ text, line: ++physical })),
      Stream.filter(({ text }) => text.trim() !== "")
    )
  })

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

/**
 * The body without the properties Mailjet refused, or `undefined` when the refusal was about more
 * than properties this body sends (then the whole event is dead-lettered).
 */
const withoutRefused = (
  body: ManageContactBody,
  refused: ReadonlyArray<string> | undefined
): ManageContactBody | undefined => {
  const properties = body.Properties
  if (refused === undefined || refused.length === 0 || properties === undefined) return undefined
  const names = new Set(refused.map((n) => n.toLowerCase()))
  const kept = Object.entries(properties).filter(([name]) => !names.has(name.toLowerCase()))
  if (kept.length + names.size !== Object.keys(properties).length) return undefined
  const { Properties: _, ...rest } = body
  return kept.length === 0 ? rest : { ...rest, Properties: Object.fromEntries(kept) }
}

const addRefused = (
  partial: PartialUpdate | undefined,
  error: PropertyMissing | InvalidContact
): PartialUpdate => {
  const refused = error.properties ?? []
  const reason = error._tag === "PropertyMissing"
    ? `contact properties not defined in Mailjet: ${refused.join(", ")}. Create them (Contacts > Contact properties) or run \`signal-mailjet check --create-missing-properties\`, then replay the dead letters: only these properties are sent again`
    : `${error.message} Only these properties are sent again on replay`
  return {
    properties: [...(partial?.properties ?? []), ...refused],
    error: error._tag,
    reason: partial === undefined ? reason : `${partial.reason}; ${reason}`
  }
}

const supersededReason = (parts: ReadonlyArray<string>, what: string) =>
  `replayed after a newer event of this contact was applied (or without signal_last_event_at to tell): ${what}; not applied, as the newer state wins: ${
    parts.join(", ")
  }`

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
  readonly run: <E, R>(lines: Stream.Stream<string, E, R>, state?: RunState) => Stream.Stream<Result, E | RunStopped, R>
  /**
   * Any items (Kafka records) in, each with its result, in input order: so whoever commits
   * progress knows that everything before an item is done once the item comes out.
   */
  readonly runTagged: <M, E, R>(
    items: Stream.Stream<M, E, R>,
    read: (m: M) => Item,
    state?: RunState
  ) => Stream.Stream<readonly [M, Result], E | RunStopped, R>
}>() {
  /**
   * Needs its parts: `MailjetClient`, `Consent`, `Mapping`, `Pacer`, `DeliveryConfig`, and what
   * preflight provides, `PropertyTypes` and `Suppressions`.
   */
  static readonly layer = Layer.effect(Delivery, Effect.suspend(() => make))

  /**
   * Every part but `PropertyTypes`, read from the current ConfigProvider, kept in the output. The
   * host brings a `FileSystem` (for a preset file); the client keeps its own connections to Mailjet.
   */
  static readonly parts = (
    options: { readonly preset?: Option.Option<string>; readonly overrides?: Partial<DeliverySettings> } = {}
  ) =>
    Layer.mergeAll(MailjetClient.layer, Consent.layer, Mapping.layer(options.preset), Pacer.layer).pipe(
      Layer.provideMerge(Layer.mergeAll(MailjetConfig.layer, DeliveryConfig.layerWith(options.overrides ?? {})))
    )

  /** What preflight would provide, for a host that runs none: the preset's datatypes, no suppressions. */
  static readonly withoutPreflight = Layer.merge(
    Layer.effect(PropertyTypes, Effect.map(Mapping, (m) => m.preset.datatypes)),
    Suppressions.layerEmpty
  )

  /** Delivery with every part read from the current ConfigProvider (the environment by default). */
  static readonly live = (
    options: { readonly preset?: Option.Option<string>; readonly overrides?: Partial<DeliverySettings> } = {}
  ) => Delivery.layer.pipe(Layer.provideMerge(Delivery.withoutPreflight), Layer.provideMerge(Delivery.parts(options)))
}

const make = Effect.gen(function*() {
  const client = yield* MailjetClient
  const consent = yield* Consent
  const mapping = yield* Mapping
  const config = yield* DeliveryConfig
  const pacer = yield* Pacer
  const datatypes = yield* PropertyTypes
  const suppressions = yield* Suppressions
  const resubscribe = consent.resubscribe === "explicit"
    ? (p: Extract<Prepared, { _tag: "Send" }>) => applySuppressions(p, suppressions)
    : (p: Extract<Prepared, { _tag: "Send" }>) => p

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
      let body = p.body
      let partial = p.partial
      // A replay first reads what Mailjet holds, then sends what of it may still apply.
      let guarded = p.replay === undefined
      let superseded: ReadonlyArray<string> = []
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
        let error: MailjetError
        if (!guarded) {
          const read = yield* Effect.either(client.contactState(p.email))
          if (Either.isRight(read)) {
            health.success()
            guarded = true
            const g = guardReplay(body, p.eventAt, read.right, p.replay === "properties")
            superseded = g.superseded
            if (g._tag === "Skip") {
              return { outcome: "dropped", reason: supersededReason(superseded, "nothing sent") } as const
            }
            body = g.body
            continue
          }
          error = read.left
        } else {
          // Attempts count what was sent to managecontact; the replay's read is not one.
          attempts++
          const started = yield* Clock.currentTimeMillis
          const result = yield* Effect.either(client.manageContact(body))
          const elapsed = (yield* Clock.currentTimeMillis) - started
          yield* Metrics.requestDuration(Effect.succeed(elapsed))
          yield* Metrics.attempts(Effect.succeed(1))
          if (Either.isRight(result)) {
            health.success()
            return {
              outcome: "delivered",
              action: body.Action,
              status: result.right.status,
              attempts,
              ...(partial === undefined ? {} : { partial }),
              ...(superseded.length > 0
                ? { superseded, note: supersededReason(superseded, `sent as ${body.Action}`) }
                : p.note === undefined
                ? {}
                : { note: p.note }),
              ...(p.demoted === undefined ? {} : { demoted: p.demoted })
            } as const
          }
          error = result.left
        }
        switch (error._tag) {
          case "Unauthorized":
          case "ListNotFound":
            return yield* Effect.fail(error)
          case "PropertyMissing":
          case "InvalidContact": {
            health.success()
            const rest = withoutRefused(body, error.properties)
            if (rest === undefined) {
              return { outcome: "dead-lettered", error: error._tag, reason: error.message, attempts } as const
            }
            // Only properties were refused: the rest of the update, and its action, still lands in order.
            body = rest
            partial = addRefused(partial, error)
            continue
          }
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
                reason: `gave up after ${failures} attempts: ${error.message}`,
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


  const logResult = (r: Result, mapped: string, email: string | undefined) => {
    const o = r.outcome
    const count = Metrics.countOutcome(mapped, o)
    const warning = o.outcome === "dead-lettered"
      ? { message: `dead-lettered: ${o.reason}`, error: o.error }
      : o.outcome === "delivered" && o.partial !== undefined
      ? { message: `delivered without ${o.partial.properties.join(", ")}, dead-lettered on their own: ${o.partial.reason}`, error: o.partial.error }
      : undefined
    if (warning === undefined) return count
    return Effect.zipRight(
      count,
      Effect.logWarning(warning.message).pipe(
        Effect.annotateLogs({
          line: r.line,
          event: r.event ?? "?",
          error: warning.error,
          ...(email === undefined ? {} : { email: Metrics.maskEmail(email) })
        })
      )
    )
  }

  const runTagged = <M, E, R>(
    items: Stream.Stream<M, E, R>,
    read: (m: M) => Item,
    given?: RunState
  ): Stream.Stream<readonly [M, Result], E | RunStopped, R> =>
    Stream.unwrap(Effect.gen(function*() {
      const state = given ?? (yield* makeRunState)
      const health = makeHealth(config.outageThreshold)
      const decided = items.pipe(
        // Sequential and pure: decisions and per-contact tickets are taken in input order.
        Stream.map((item) => {
          const { line, only, replay, text } = read(item)
          const decoded = prepareLine(text, line, consent.resolve, mapping, datatypes)
          const prepared = decoded._tag === "Done"
            ? decoded
            : only !== undefined
            ? onlyProperties(decoded, only)
            : resubscribe(replay === true ? { ...decoded, replay: "event" } : decoded)
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
          Effect.map((o) => [item, resultOf(p, o)] as const),
          Effect.tap(([, r]) => logResult(r, p.mapped, p.email)),
          Effect.ensuring(p.ticket.release)
        )
      }
      // Every event read has its result first; then a stop that was not asked for is the run's error.
      const stopped = Effect.flatMap(state.stopped, (s): Effect.Effect<void, RunStopped> =>
        Option.isNone(s) || s.value._tag === "Shutdown"
          ? Effect.void
          : Effect.fail(s.value._tag === "Fatal" ? s.value.error : new MailjetOutage({ detail: s.value.detail })))
      return Stream.concat(orderedConcurrently(decided, settle, config.concurrency), Stream.drain(Stream.fromEffect(stopped)))
    }))

  const run = <E, R>(lines: Stream.Stream<string, E, R>, given?: RunState): Stream.Stream<Result, E | RunStopped, R> =>
    Stream.map(runTagged(numbered(lines), (x) => x, given), ([, r]) => r)

  const deliver = (raw: unknown): Effect.Effect<Outcome, FatalError> =>
    Effect.gen(function*() {
      const state = yield* makeRunState
      const p = prepare(
        { line: 1, raw, event: decodeSignalEvent(raw) },
        consent.resolve,
        mapping.preset,
        mapping.map,
        datatypes
      )
      if (p._tag === "Done") return p.result.outcome
      const { release, wait } = takeTicket(p.email)
      return yield* wait.pipe(Effect.zipRight(send(p, state, makeHealth(config.outageThreshold))), Effect.ensuring(release))
    })

  return Delivery.of({ deliver, run, runTagged })
})

