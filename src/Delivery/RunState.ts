/**
 * How a run stops: what `stop` and `drain` do to the events not sent yet, and what ends a run early
 * in `Delivery.run`'s error channel.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { FatalError } from "../Mailjet/MailjetError.js"
import type { RunHooks } from "../Mailjet/MailjetGateway.js"

/** Many calls in a row failed: a run stops spending attempts and ends with this error. */
export class MailjetOutage extends Schema.TaggedError<MailjetOutage>()("MailjetOutage", { detail: Schema.String }) {
  override get message(): string {
    return `Mailjet looks down (${this.detail}); stopped sending. Rerun later: redelivery is safe.`
  }
}

/**
 * A contact's update waited MAILJET_BULK_JOB_TIMEOUT for a bulk job that may still land: Mailjet
 * answers, the job has not ended. Not an outage: the rerun waits for the job again.
 */
export class BulkJobPending extends Schema.TaggedError<BulkJobPending>()("BulkJobPending", { detail: Schema.String }) {
  override get message(): string {
    return `Stopped sending, ${this.detail}. Rerun later: redelivery is safe, and waits for the job again.`
  }
}

/** What ends a run early, in `run`'s error channel once every event read has its result. */
export type RunStopped = FatalError | MailjetOutage | BulkJobPending

/** Why a run stopped sending. */
export type StopReason =
  | { readonly _tag: "Fatal"; readonly error: FatalError }
  | { readonly _tag: "Outage"; readonly detail: string }
  | { readonly _tag: "JobPending"; readonly detail: string }
  | { readonly _tag: "Shutdown" }

export const stopMessage = (s: StopReason): string =>
  s._tag === "Fatal"
    ? s.error.message
    : s._tag === "Outage"
    ? `Mailjet looks down (${s.detail}); stopped sending. Rerun later: redelivery is safe.`
    : s._tag === "JobPending"
    ? new BulkJobPending({ detail: s.detail }).message
    : "stopped by a shutdown signal before this event was sent; rerun to deliver it"

export interface RunState {
  readonly stopped: Effect.Effect<Option.Option<StopReason>>
  /** `stopped`, read synchronously: the per-event path checks it without an Effect (send.ts). */
  readonly stoppedNow: () => StopReason | undefined
  /** Ends sending: in-flight events finish, later ones are `not-attempted`. First reason wins. */
  readonly stop: (reason: StopReason) => Effect.Effect<void>
  /** Completes when the run is stopped: waits (pacing, backoff) race it so a stop is prompt. */
  readonly onStop: Effect.Effect<StopReason>
  /**
   * Starts nothing new: events already sending finish (retries included), and so does every event
   * read before the last one that started; the rest are not attempted. So what is not attempted
   * is always the end of the input: a Kafka commit (a prefix) or a resume covers all that was sent.
   */
  readonly drain: Effect.Effect<void>
  readonly draining: Effect.Effect<boolean>
  /**
   * May the event at `seq` (its place in the input) start sending? Synchronous, so that the check
   * and the record of what started are one step for the fibers that call it.
   */
  readonly admit: (seq: number) => boolean
}

export const makeRunState: Effect.Effect<RunState> = Effect.gen(function*() {
  const stopped = yield* Deferred.make<StopReason>()
  const draining = yield* Deferred.make<void>()
  // Before a drain every event is admitted and the furthest one is recorded; a drain cuts there.
  let furthest = -1
  let cut = Infinity
  // The Deferred's value, kept beside it so that it can be read without running an Effect.
  let reason: StopReason | undefined
  return {
    stopped: Effect.flatMap(
      Deferred.poll(stopped),
      Option.match({ onNone: () => Effect.succeedNone, onSome: Effect.asSome })
    ),
    stoppedNow: () => reason,
    stop: (r) =>
      Effect.suspend(() => {
        // The first reason wins, as the Deferred's does.
        reason ??= r
        return Effect.asVoid(Deferred.succeed(stopped, r))
      }),
    onStop: Deferred.await(stopped),
    drain: Effect.suspend(() => {
      if (cut === Infinity) cut = furthest + 1
      return Effect.asVoid(Deferred.succeed(draining, undefined))
    }),
    draining: Deferred.isDone(draining),
    admit: (seq) => {
      if (seq >= cut) return false
      if (seq > furthest) furthest = seq
      return true
    }
  }
})

/** What the Mailjet gateway needs of a run: its stop, said as the events it leaves say it. */
export const runHooks = (state: RunState): RunHooks => ({
  stopped: Effect.map(state.stopped, Option.map(stopMessage)),
  onStop: state.onStop,
  stop: state.stop
})
