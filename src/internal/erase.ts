/**
 * A deletion request, sent: the contact looked up by its address and erased by its ID (the
 * gateway's `erase`), then a tombstone recorded, so that no older event brings it back. Called by
 * the per-event path (send.ts) at the contact's turn, after its earlier events and any bulk job
 * of theirs that may still land: an erasure is one call at a time, in order, never in a bulk job.
 * The contact's suppression, if any, moves from its address (Suppressions, forgotten) into the
 * tombstone (`unsub`): standing consent still does not subscribe it again, and no address is kept.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { Outcome } from "../Domain/Outcome.js"
import { eventTime, type TombstoneSet } from "../Domain/Tombstones.js"
import { type SuppressionSet, UnsubscribedByLine } from "../Suppressions.js"
import * as Metrics from "../Delivery/Metrics.js"
import type { Prepared } from "../Delivery/Prepare.js"
import { type RunState, stopMessage } from "../Delivery/RunState.js"
import type { Lane, MailjetGateway } from "../Mailjet/MailjetGateway.js"

type Send = Extract<Prepared, { _tag: "Send" }>


/** `suppressions`: who is unsubscribed (preflight's, the run's own); without them (`erase`), only an earlier tombstone's `unsub` is kept. */
export const makeErase = (gateway: typeof MailjetGateway.Service, tombstones: TombstoneSet, suppressions?: SuppressionSet) =>
  Effect.fnUntraced(function*(p: Pick<Send, "line" | "email" | "timestamp">, seq: number, state: RunState, lane: Lane): Effect.fn.Return<Outcome> {
    const stopped = yield* state.stopped
    if (Option.isSome(stopped)) return { outcome: "not-attempted", reason: stopMessage(stopped.value) } as const
    if (!state.admit(seq)) return { outcome: "not-attempted", reason: stopMessage({ _tag: "Shutdown" }) } as const
    const r = yield* Effect.either(gateway.erase(lane, p.email))
    if (Either.isLeft(r)) {
      const e = r.left
      if (e._tag === "CallStopped") {
        return { outcome: "not-attempted", reason: e.reason, ...(e.error === undefined ? {} : { error: e.error }) } as const
      }
      yield* Effect.logWarning(`erasure not done: ${e.message}`).pipe(
        Effect.annotateLogs({ line: p.line, email: Metrics.maskEmail(p.email) })
      )
      return {
        outcome: "dead-lettered",
        error: e.rateLimited ? "RateLimited" : "MailjetUnavailable",
        reason: `the contact was not erased: ${e.message}; replay the dead letter to erase it`,
        attempts: e.tries
      } as const
    }
    // The erasure's own time when it says one, else now: what older events are measured against.
    const said = eventTime(p.timestamp)
    const at = Number.isNaN(said) ? yield* Clock.currentTimeMillis : said
    // A bulk window's later lines were decided before this was sent, and a later line's unsubscribe
    // may stand for an earlier one too: kept (and counted, the safe side), not forgotten.
    const held = suppressions?.get(p.email)
    const before = held !== undefined && !(held instanceof UnsubscribedByLine && held.line > p.line)
    const unsub = held !== undefined || tombstones.get(p.email)?.unsub === true
    // Recorded (and shared) before the address is forgotten: the suppression is never nowhere.
    tombstones.record(p.email, unsub ? { at, unsub: true } : { at })
    if (before) suppressions?.forget(p.email)
    return r.right._tag === "Erased"
      ? { outcome: "erased", action: "erase", status: 200, attempts: r.right.attempts } as const
      : { outcome: "not-found", action: "erase", status: 404, attempts: 0 } as const
  })
