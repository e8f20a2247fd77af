/**
 * Per-contact order, in one place: whose turn it is. A contact's events go one after another in
 * input order (tickets), and none goes while a bulk job that may still land holds the contact
 * (fences, Fences.ts): the job would overwrite it. Fence changes are a `Stream` for whoever shares
 * them (serve's workers).
 *
 * Tickets are taken in the sequential stage, so the chain follows input order; the map holds only
 * contacts with an event in flight. A Deferred is made only when a later event of the same contact
 * has to wait: most events have none, and a Deferred costs a few µs to make. One object per
 * ticket: a window holds one for each of its contacts for as long as its jobs run.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type Fence, type Fences, makeFences, unfinishedJobDetail } from "../Delivery/Fences.js"
import type { RunState } from "../Delivery/RunState.js"

export interface Ticket {
  readonly email: string
  released: boolean
  next: Deferred.Deferred<void> | undefined
  /** The previous event's end, when it had not ended as this one was taken. */
  readonly turn: Deferred.Deferred<void> | undefined
}

/** A bulk job of this process was accepted (it may land until it ends), or was seen to end. */
export type FenceChange =
  | { readonly _tag: "Opened"; readonly fence: Fence }
  | { readonly _tag: "Ended"; readonly fence: Fence }

export interface Order {
  /** The next place in a contact's line; taken in input order. */
  readonly take: (email: string) => Ticket
  /** Waits for the contact's previous event to end. */
  readonly turn: (ticket: Ticket) => Effect.Effect<void>
  /** This event ended (sent or not): the contact's next one may go. */
  readonly release: (ticket: Ticket) => Effect.Effect<void>
  /** `release`, done now. */
  readonly releaseNow: (ticket: Ticket) => void
  readonly fences: Fences
  /**
   * Holds these contacts back while an earlier bulk job of theirs may still land, up to
   * `patience`; stops the run (JobPending) if one does not end by then.
   */
  readonly fenced: (emails: Iterable<string>, state: RunState) => Effect.Effect<void>
  /**
   * Subscribes to this process's fence changes: every change after it returns is in the stream,
   * buffered until read, for as long as the scope lasts.
   */
  readonly changes: Effect.Effect<Stream.Stream<FenceChange>, never, Scope.Scope>
}

export const makeOrder = (patience: Duration.Duration): Order => {
  const tails = new Map<string, Ticket>()
  const fences = makeFences()
  const releaseNow = (t: Ticket) => {
    t.released = true
    if (tails.get(t.email) === t) tails.delete(t.email)
    // Completed in place: the next event's lane, waiting on it, is resumed by its scheduler.
    if (t.next !== undefined) Deferred.unsafeDone(t.next, Exit.void)
  }
  return {
    take: (email) => {
      const previous = tails.get(email)
      let turn: Deferred.Deferred<void> | undefined
      if (previous !== undefined && !previous.released) turn = previous.next ??= Deferred.unsafeMake<void>(FiberId.none)
      const mine: Ticket = { email, released: false, next: undefined, turn }
      tails.set(email, mine)
      return mine
    },
    turn: (t) => t.turn === undefined ? Effect.void : Deferred.await(t.turn),
    release: (t) => Effect.sync(() => releaseNow(t)),
    releaseNow,
    fences,
    fenced: (emails, state) =>
      Effect.suspend(() => {
        const open = fences.of(emails)
        if (open.length === 0) return Effect.void
        return Effect.flatMap(fences.await(open, patience, state.onStop), (stuck) =>
          Option.isNone(stuck)
            ? Effect.void
            : state.stop({ _tag: "JobPending", detail: unfinishedJobDetail(stuck.value, patience) }))
      }),
    changes: Effect.gen(function*() {
      const queue = yield* Effect.acquireRelease(Queue.unbounded<FenceChange>(), Queue.shutdown)
      // Listeners are called synchronously; an unbounded queue takes an offer at once.
      yield* Effect.acquireRelease(
        Effect.sync(() =>
          fences.observe({
            opened: (fence) => void Queue.unsafeOffer(queue, { _tag: "Opened", fence }),
            ended: (fence) => void Queue.unsafeOffer(queue, { _tag: "Ended", fence })
          })
        ),
        (off) => Effect.sync(off)
      )
      return Stream.fromQueue(queue)
    })
  }
}
