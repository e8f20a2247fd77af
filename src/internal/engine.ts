/**
 * The engine behind the public `Delivery` service: event → decode → consent → map → (pace,
 * per-contact order) → Mailjet → outcome.
 *
 * `run` turns a stream of NDJSON lines into one `Result` per line, in input order. Events of one
 * contact are sent one after another in input order (order.ts); other contacts go in parallel up
 * to the configured concurrency. Fatal errors, an outage or `stop` end the sending: what is in
 * flight finishes, everything after it is `not-attempted`, and the stream still yields a result
 * for every line it reads. The per-event path is send.ts, the windowed one windowed.ts.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Consent } from "../Consent.js"
import { decodeSignalEvent } from "../Domain/SignalEvent.js"
import type { Outcome, Result } from "../Domain/Outcome.js"
import type { MailjetClient } from "../Mailjet/MailjetClient.js"
import { MailjetGateway } from "../Mailjet/MailjetGateway.js"
import type { FatalError } from "../Mailjet/MailjetError.js"
import { Mapping } from "../Mapping.js"
import { PropertyTypes } from "../Preset/PropertyTypes.js"
import { Suppressions } from "../Suppressions.js"
import { makeTombstones, randomSecret, Tombstones } from "../Domain/Tombstones.js"
import { DeliveryConfig } from "../Delivery/DeliveryConfig.js"
import type { FenceListener } from "../Delivery/Fences.js"
import { orderedConcurrently } from "../Delivery/Lanes.js"
import {
  applySuppressions,
  type Item,
  numbered,
  onlyProperties,
  type PackedSend,
  type Prepared,
  prepare,
  prepareLine,
  resultOf,
  tooLong,
  unread,
  withoutText
} from "../Delivery/Prepare.js"
import { BulkJobPending, makeRunState, MailjetOutage, runHooks, type RunState, type RunStopped } from "../Delivery/RunState.js"
import { type FenceChange, makeOrder, type Ticket } from "./order.js"
import { watchInBackground } from "./bulkJob.js"
import { makeBulk } from "./bulkSettle.js"
import { logResult, logResultNow, stopOnFatal, type Unit } from "./results.js"
import { makeSend, type Send } from "./send.js"
import { AUTO_BACKLOG_SECONDS, windowed } from "./windowed.js"

export interface DeliveryService {
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
    state?: RunState,
    /**
     * What of an item is held while its event waits, and handed back with its result: a caller
     * that needs only the results keeps a backlog's texts off the heap with `withoutText`.
     */
    hold?: (m: M) => M
  ) => Stream.Stream<readonly [M, Result], E | RunStopped, R>
  /**
   * Bulk jobs that may still land, shared between processes (SuppressionTopic does it for `serve`):
   * this process's are told to listeners; another's are fenced here too and watched to their end.
   */
  readonly jobs: {
    readonly observe: (listener: FenceListener) => void
    /**
     * The same changes as a Stream: subscribes when run (in a scope), then has every job opened
     * here, or seen to end, until the scope closes.
     */
    readonly changes: Effect.Effect<Stream.Stream<FenceChange>, never, Scope.Scope>
    /** Another process's job, with (some of) its contacts. */
    readonly learn: (job: number, emails: ReadonlyArray<string>) => Effect.Effect<void>
    /** Another process saw the job end. */
    readonly forget: (job: number) => Effect.Effect<void>
  }
}

/** Every event read has its result first; then a stop that was not asked for is the run's error. */
const endOf = (state: RunState) =>
  Stream.drain(Stream.fromEffect(Effect.flatMap(state.stopped, (s): Effect.Effect<void, RunStopped> =>
    Option.isNone(s) || s.value._tag === "Shutdown"
      ? Effect.void
      : Effect.fail(
        s.value._tag === "Fatal"
          ? s.value.error
          : s.value._tag === "JobPending"
          ? new BulkJobPending({ detail: s.value.detail })
          : new MailjetOutage({ detail: s.value.detail })
      ))))

export const makeEngine: Effect.Effect<
  DeliveryService,
  never,
  MailjetClient | Consent | Mapping | DeliveryConfig | PropertyTypes | Suppressions | Scope.Scope
> = Effect.gen(function*() {
  const gateway = yield* MailjetGateway.fromContext
  const consent = yield* Consent
  const mapping = yield* Mapping
  const config = yield* DeliveryConfig
  const datatypes = yield* PropertyTypes
  const suppressions = yield* Suppressions
  // Jobs whose end was not seen are watched for as long as the service lives.
  const scope = yield* Effect.scope
  const order = makeOrder(config.bulkJobTimeout)
  const { fences } = order
  const watch = watchInBackground({ gateway, config, fences, scope })
  // A host that provides none (an embedding, for now `serve`) keeps this process's erasures only.
  const tombstones = Option.getOrElse(yield* Effect.serviceOption(Tombstones), () => Tombstones.of(makeTombstones(randomSecret())))
  const resubscribe = <S extends PackedSend>(p: S): S => consent.resubscribe === "explicit" ? applySuppressions(p, suppressions, tombstones) : p
  const send = makeSend(gateway, config, tombstones, suppressions)

  /** An item as far as it can be decided without Mailjet, in input order; suppressions are the caller's. */
  const decide = ({ line, only, replay, text, tooLong: bytes, undecodable }: Item): Prepared => {
    const decoded = bytes !== undefined ? tooLong(line, bytes) : undecodable !== undefined
      ? unread(line, "UndecodableBatch", undecodable)
      : prepareLine(text, line, consent.resolve, mapping, datatypes)
    if (decoded._tag === "Done") return decoded
    if (only !== undefined) return onlyProperties(decoded, only)
    return replay === true ? { ...decoded, replay: "event" as const } : decoded
  }

  // In `auto`, a rate that clears a whole window in AUTO_BACKLOG_SECONDS never needs bulk.
  const bulkable = config.bulk === "always" || (config.bulk === "auto" && config.maxRps * AUTO_BACKLOG_SECONDS < config.bulkSize)

  const windowEngine = {
    config,
    order,
    decide,
    resubscribe,
    whole: suppressions.whole,
    bulk: (state: RunState) =>
      makeBulk({ gateway, lane: gateway.lane(runHooks(state)), config, state, fences, scope, send, erased: (email) => tombstones.erasedAt(email) !== undefined })
  }

  const runTagged = <M, E, R>(
    items: Stream.Stream<M, E, R>,
    read: (m: M) => Item,
    given?: RunState,
    hold: (m: M) => M = (m) => m
  ): Stream.Stream<readonly [M, Result], E | RunStopped, R> =>
    Stream.unwrap(Effect.gen(function*() {
      const state = given ?? (yield* makeRunState)
      const lane = gateway.lane(runHooks(state))
      // The run's metric labels and clock, for what is done without an Effect (logResultNow, start).
      const labels = yield* FiberRef.get(FiberRef.currentMetricLabels)
      const at = { clock: yield* Effect.clock, labels }
      let seq = 0
      // Sequential and pure: decisions and per-contact tickets are taken in input order.
      const one = (item: M, p: Prepared): Extract<Unit<M>, { _tag: "One" }> =>
        p._tag === "Done" ? { _tag: "One", item, p } : { _tag: "One", item, p, seq: seq++, ticket: order.take(p.email) }
      const settled = (item: M, p: Send, o: Outcome): Effect.Effect<readonly [M, Result]> => {
        const r = resultOf(p, o)
        const warning = logResultNow(r, p.mapped, p.email, read(item).position, labels)
        return warning === undefined ? Effect.succeed([item, r] as const) : Effect.as(warning, [item, r] as const)
      }
      // `ensuring` and `catchAll` as one match: the ticket is released however the send ends,
      // an interruption included (the contact's next event, in this run or a later one, waits on it).
      const settleNow = (item: M, p: Send, ticket: Ticket, sent: Effect.Effect<Outcome, FatalError>): Effect.Effect<readonly [M, Result]> =>
        Effect.uninterruptibleMask((restore) =>
          Effect.matchCauseEffect(restore(sent), {
            onFailure: (cause) => {
              const fatal = Cause.failureOrCause(cause)
              if (Either.isLeft(fatal)) return Effect.flatMap(stopOnFatal(state)(fatal.left), (o) => (order.releaseNow(ticket), settled(item, p, o)))
              order.releaseNow(ticket)
              return Effect.failCause(fatal.right)
            },
            onSuccess: (o) => {
              order.releaseNow(ticket)
              return settled(item, p, o)
            }
          })
        )
      /**
       * The usual event (its turn now, no bulk job to wait for) started without a fiber where `start`
       * can: counted, released and handed on as plain code. Cancelled, its ticket is released.
       */
      const startNow = (u: Extract<Unit<M>, { _tag: "One" }>, done: (r: Effect.Effect<readonly [M, Result]>) => void) => {
        if (u.ticket === undefined || u.ticket.turn !== undefined) return settle(u)
        const { item, p, ticket } = u
        const started = send.start(resubscribe(p), u.seq, state, lane, at, (o) => {
          if (Effect.isEffect(o)) return done(settleNow(item, p, ticket, o))
          order.releaseNow(ticket)
          done(settled(item, p, o))
        })
        if (Effect.isEffect(started)) return settleNow(item, p, ticket, started)
        return {
          cancel: () => {
            started.cancel()
            order.releaseNow(ticket)
          }
        }
      }
      const settle = (u: Extract<Unit<M>, { _tag: "One" }>): Effect.Effect<readonly [M, Result]> => {
        const { item } = u
        if (u.ticket === undefined) {
          const { p } = u
          return Effect.as(logResult(p.result, p.mapped ?? "unmapped", undefined, read(item).position), [item, p.result] as const)
        }
        const { p, seq, ticket } = u
        return order.turn(ticket).pipe(
          Effect.zipRight(bulkable ? order.fenced([p.email], state) : Effect.void),
          // Suppressions are read as late as possible: one learnt while the event waited still counts.
          Effect.zipRight(Effect.suspend(() => send(resubscribe(p), seq, state, lane))),
          Effect.catchAll(stopOnFatal(state)),
          Effect.map((o) => [item, resultOf(p, o)] as const),
          Effect.tap(([, r]) => logResult(r, p.mapped, p.email, read(item).position)),
          Effect.ensuring(order.release(ticket))
        )
      }
      if (!bulkable) {
        const ones = Stream.map(items, (item) => one(item, decide(read(item))))
        return Stream.concat(orderedConcurrently(ones, startNow, config.concurrency), endOf(state))
      }
      const run = { state, read, hold, one, settle, claim: (n: number) => (seq += n) - 1 }
      return Stream.concat(windowed(windowEngine, run, items), endOf(state))
    }))

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
      const ticket = order.take(p.email)
      return yield* order.turn(ticket).pipe(
        Effect.zipRight(Effect.suspend(() => send(resubscribe(p), 0, state, gateway.lane(runHooks(state))))),
        Effect.ensuring(order.release(ticket))
      )
    })

  const run = <E, R>(lines: Stream.Stream<string, E, R>, given?: RunState): Stream.Stream<Result, E | RunStopped, R> =>
    Stream.map(runTagged(numbered(lines), (x) => x, given, withoutText), ([, r]) => r)

  const jobs = {
    observe: (listener: FenceListener) => {
      fences.observe(listener)
    },
    changes: order.changes,
    learn: (job: number, emails: ReadonlyArray<string>) =>
      Effect.suspend(() => Option.match(fences.learn(job, emails), { onNone: () => Effect.void, onSome: watch })),
    forget: fences.forget
  }

  return { deliver, run, runTagged, jobs }
})
