/**
 * One event's update, sent until it is done: the per-event path. One state machine per event, kept
 * whole so its order of checks reads top to bottom: the run's stop, its drain, the slot, the
 * replay's read, partial updates, 429s and retries. What it decides without I/O is in Prepare.ts;
 * every call goes through the gateway. No fiber, race or Deferred is made unless a wait needs one:
 * this runs once per event at full speed.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import type { MetricLabel } from "effect/MetricLabel"
import * as Schedule from "effect/Schedule"
import type { Outcome } from "../Domain/Outcome.js"
import { eventTime, type Tombstone, type TombstoneSet, tombstoneVerdict, unsubscribedBeforeErasure } from "../Domain/Tombstones.js"
import type { DeliverySettings } from "../Delivery/DeliveryConfig.js"
import * as Metrics from "../Delivery/Metrics.js"
import { demote, type Prepared } from "../Delivery/Prepare.js"
import { addRefused, supersededReason, withoutRefused } from "../Delivery/Refused.js"
import { guardReplay } from "../Delivery/ReplayGuard.js"
import { type RunState, stopMessage } from "../Delivery/RunState.js"
import { type Lane, type MailjetGateway, MAX_RATE_LIMITED_RETRIES } from "../Mailjet/MailjetGateway.js"
import type { ManageContactError, ManagedContact } from "../Mailjet/MailjetClient.js"
import type { FatalError, MailjetError } from "../Mailjet/MailjetError.js"
import type { SuppressionSet } from "../Suppressions.js"
import { makeErase } from "./erase.js"

export type Send = Extract<Prepared, { _tag: "Send" }>

type ManageNow = NonNullable<typeof MailjetGateway.Service["client"]["manageContactNow"]>
/** An event started without a fiber: `cancel` ends it unanswered. */
export type Pending = ReturnType<ManageNow>
/** The run's clock and metric labels, for what is done without a fiber. */
export interface Now {
  readonly clock: Clock.Clock
  readonly labels: ReadonlyArray<MetricLabel>
}
/** A started event's end: its outcome, or the Effect that goes on (the loop). */
type Done = (o: Outcome | Effect.Effect<Outcome, FatalError>) => void

/**
 * `send` sends one update until it is done (`seq`: its place in the input, for a drain); fails only
 * with a fatal error. The usual event (no erasure, no replay, a run not stopped) goes out with a
 * callback; `start` does the same without a fiber when its slot is free now. The loop below is
 * entered only for what it alone handles, and from where the usual path left off (its first answer).
 */
export const makeSend = (gateway: typeof MailjetGateway.Service, config: DeliverySettings, tombstones: TombstoneSet, suppressions?: SuppressionSet) => {
  const client = gateway.client
  const erase = makeErase(gateway, tombstones, suppressions)

  /**
   * While the list's view is being read (Mailjet/SuppressionSnapshot.ts), standing consent and an
   * erasure (which keeps whether its contact was unsubscribed) first ask Mailjet about the contact:
   * what does so, or undefined.
   */
  const askFirst = (p: Send) =>
    suppressions !== undefined && (p.erase === true || (p.action === "addforce" && !p.explicit && p.demoted === undefined))
      ? suppressions.asking(p.email)
      : undefined

  /**
   * Everything the usual path does not: `first` is the first attempt's answer still to be read
   * when that attempt went out on the usual path (paced, admitted and counted there).
   */
  const loop = Effect.fnUntraced(function*(
    p: Send, seq: number, state: RunState, lane: Lane, tombstone: Tombstone | undefined,
    first?: Effect.Effect<ManagedContact, ManageContactError>
  ): Effect.fn.Return<Outcome, FatalError> {
    // Read at the contact's turn: an erasure earlier in the input is known by now. No event older
    // than an erasure brings the contact back; the time is read only for an erased contact.
    const erased = tombstone === undefined ? undefined : tombstoneVerdict(tombstone.at, eventTime(p.timestamp))
    if (erased !== undefined) return { outcome: "dropped", reason: erased } as const
    // ---- The list's view being read: ask first (an attempt handed over from the usual path never needed to).
    const asking = first === undefined ? askFirst(p) : undefined
    if (asking !== undefined) {
      const asked = yield* Effect.either(gateway.retrying(lane, asking))
      if (Either.isLeft(asked)) {
        const e = asked.left
        return e._tag === "CallStopped"
          ? { outcome: "not-attempted", reason: e.reason, ...(e.error === undefined ? {} : { error: e.error }) } as const
          : {
            outcome: "dead-lettered",
            // The gateway retried what it could; a fatal error stopped the run (CallStopped).
            error: e._tag !== "RetriesExhausted" ? e._tag : e.rateLimited ? "RateLimited" : "MailjetUnavailable",
            reason: `not sent: whether the contact is unsubscribed could not be read: ${e.message}`,
            attempts: 0
          } as const
      }
      const held = p.erase === true ? undefined : suppressions!.get(p.email)
      if (held !== undefined) p = demote(p, held.reason)
    }
    // ---- end of the view's hook.
    if (p.erase === true) return yield* erase(p, seq, state, lane)
    let body = p.body
    let demoted = p.demoted
    // A newer event of a contact unsubscribed when it was erased: Mailjet holds it in no list any
    // more, where `addnoforce` would subscribe it; `unsub` brings it back as it was, unsubscribed.
    if (tombstone?.unsub === true && body.Action === "addnoforce") {
      body = { ...body, Action: "unsub" }
      demoted ??= unsubscribedBeforeErasure(tombstone)
    }
    let attempts = first === undefined ? 0 : 1
    let failures = 0
    let limited = 0
    let partial = p.partial
    // A replay first reads what Mailjet holds, then sends what of it may still apply.
    let guarded = p.replay === undefined
    let superseded: ReadonlyArray<string> = []
    // The gateway's retry schedule, driven here: made at the first failure, most events have none.
    let backoff: Schedule.ScheduleDriver<unknown, unknown> | undefined
    while (true) {
      // The usual path took the stop's check, the drain's and the slot for the first attempt.
      if (first === undefined) {
        const stopped = yield* state.stopped
        if (Option.isSome(stopped)) {
          return {
            outcome: "not-attempted",
            reason: stopMessage(stopped.value),
            ...(attempts > 0 ? { attempts } : {})
          } as const
        }
        if (attempts === 0 && !state.admit(seq)) {
          return { outcome: "not-attempted", reason: stopMessage({ _tag: "Shutdown" }) } as const
        }
        // A replay's read is two calls (the list recipient and the contact's data): two slots. A
        // stop during the wait is seen at the top of the loop.
        if (!(yield* gateway.slot(state.onStop, guarded ? 1 : 2))) continue
      }
      let error: MailjetError
      if (!guarded) {
        const read = yield* Effect.either(client.contactState(p.email))
        if (Either.isRight(read)) {
          lane.answered()
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
        let result: Either.Either<ManagedContact, ManageContactError>
        if (first !== undefined) {
          // The first attempt, sent and counted on the usual path: its answer is read here.
          result = yield* Effect.either(first)
          first = undefined
        } else {
          // Attempts count what was sent to managecontact; the replay's read is not one.
          attempts++
          const started = yield* Clock.currentTimeMillis
          result = yield* Effect.either(client.manageContact(body))
          const elapsed = (yield* Clock.currentTimeMillis) - started
          yield* Metrics.requestDuration(Effect.succeed(elapsed))
          yield* Metrics.attempts(Effect.succeed(1))
        }
        if (Either.isRight(result)) return succeeded(p, body, result.right, attempts, partial, superseded, demoted, lane, tombstone)
        error = result.left
      }
      switch (error._tag) {
        case "Unauthorized":
        case "ListNotFound":
          return yield* Effect.fail(error)
        case "PropertyMissing":
        case "InvalidContact": {
          lane.answered()
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
          yield* gateway.rateLimited
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
          yield* lane.failed(error.detail)
          // Checked before the schedule's own end, so that the last failure is dead-lettered
          // even when the outage it completes stopped the run at the same moment.
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
          backoff ??= yield* Schedule.driver(gateway.schedule)
          yield* Effect.raceFirst(Effect.ignore(backoff.next(error)), Effect.asVoid(state.onStop))
      }
    }
  })

  /** Mailjet took the update: the outcome, the same on either path. */
  const succeeded = (
    p: Send, body: Send["body"], answer: ManagedContact, attempts: number, partial: Send["partial"],
    superseded: ReadonlyArray<string>, demoted: Send["demoted"], lane: Lane, tombstone: Tombstone | undefined
  ): Outcome => {
    lane.answered()
    // Subscribed again: the unsubscribe the erasure kept no longer holds.
    if (tombstone?.unsub === true && body.Action === "addforce") tombstones.lift(p.email)
    return {
      outcome: "delivered",
      action: body.Action,
      status: answer.status,
      attempts,
      ...(partial === undefined ? {} : { partial }),
      ...(superseded.length > 0
        ? { superseded, note: supersededReason(superseded, `sent as ${body.Action}`) }
        : p.note === undefined
        ? {}
        : { note: p.note }),
      ...(demoted === undefined ? {} : { demoted })
    } as const
  }

  /**
   * The first attempt with a callback: the usual answer makes the outcome here; any other (a
   * status, a transport failure) is handed on as `loop`, whose first turn reads it.
   */
  const attemptNow = (p: Send, seq: number, state: RunState, lane: Lane, now: ManageNow, at: Now, done: Done) => {
    const started = at.clock.unsafeCurrentTimeMillis()
    return now(p.body, (answer) => {
      Metrics.countAttemptNow(at.clock.unsafeCurrentTimeMillis() - started, at.labels)
      done(
        Effect.isEffect(answer)
          ? loop(p, seq, state, lane, undefined, answer)
          : succeeded(p, p.body, answer, 1, p.partial, [], p.demoted, lane, undefined)
      )
    })
  }

  /** The usual event's client callback, or undefined when the loop decides (see `start`). */
  const usual = (p: Send, seq: number, state: RunState, tombstone: Tombstone | undefined) => {
    // A client without the callback, a stopped or draining run, an erased contact, an erasure,
    // a replay, a contact to ask Mailjet about first: the loop decides.
    const now = client.manageContactNow
    return now === undefined || tombstone !== undefined || p.erase === true || p.replay !== undefined ||
        state.stoppedNow() !== undefined || !state.admit(seq) || askFirst(p) !== undefined
      ? undefined
      : now
  }

  /** After the slot's wait (a stop during it: the loop says so, it checks the stop first). */
  const afterSlot = (go: boolean, p: Send, seq: number, state: RunState, lane: Lane, now: ManageNow, tombstone: Tombstone | undefined) =>
    go
      ? Effect.withFiberRuntime<Outcome, FatalError>((fiber) => {
        const at = { clock: Context.get(fiber.currentDefaultServices, Clock.Clock), labels: fiber.getFiberRef(FiberRef.currentMetricLabels) }
        return Effect.async<Outcome, FatalError>((resume) => {
          const pending = attemptNow(p, seq, state, lane, now, at, (o) => resume(Effect.isEffect(o) ? o : Effect.succeed(o)))
          return Effect.sync(pending.cancel)
        })
      })
      : loop(p, seq, state, lane, tombstone)

  /**
   * `send` in plain code for the usual event whose slot is free now: it goes out at once, and
   * `done` is called once with its outcome or the Effect that goes on; else the Effect to run.
   * `at`: the run's clock and metric labels.
   */
  const start = (p: Send, seq: number, state: RunState, lane: Lane, at: Now, done: Done): Pending | Effect.Effect<Outcome, FatalError> => {
    const tombstone = tombstones.get(p.email)
    const now = usual(p, seq, state, tombstone)
    if (now === undefined) return loop(p, seq, state, lane, tombstone)
    const wait = gateway.slotNow(at.clock.unsafeCurrentTimeMillis())
    if (wait !== undefined && wait < 1) return attemptNow(p, seq, state, lane, now, at, done)
    const slot = wait === undefined ? gateway.slot(state.onStop) : gateway.slotAfter(wait, state.onStop)
    return Effect.flatMap(slot, (go) => afterSlot(go, p, seq, state, lane, now, tombstone))
  }

  // Suspended: what it reads (the tombstones, the stop, the drain's cut) is read when it runs.
  const send = (p: Send, seq: number, state: RunState, lane: Lane): Effect.Effect<Outcome, FatalError> =>
    Effect.suspend(() => {
      const tombstone = tombstones.get(p.email)
      const now = usual(p, seq, state, tombstone)
      if (now === undefined) return loop(p, seq, state, lane, tombstone)
      return Effect.flatMap(gateway.slot(state.onStop), (go) => afterSlot(go, p, seq, state, lane, now, tombstone))
    })
  // The Effect, with its plain-code start beside it.
  return Object.assign(send, { start })
}
