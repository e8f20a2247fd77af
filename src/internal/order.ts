/**
 * Per-contact order, in one place: whose turn it is. A contact's events go one after another in
 * input order (tickets), and none goes while a bulk job that may still land holds the contact
 * (fences, Fences.ts): the job would overwrite it. Fence changes are a `Stream` for whoever shares
 * them (serve's workers).
 *
 * Tickets are taken in the sequential stage, so the chain follows input order; the map holds only
 * contacts with an event in flight. A Deferred is made only when a later event of the same contact
 * has to wait: most events have none, and a Deferred costs a few µs to make.
 *
 * A bulk window is one place in all its contacts' lines (WindowTicket): its contacts as hashes
 * (ContactSet), one Deferred for whoever waits for it, and the ends it waits for, each once. A
 * ticket each held about 500 bytes a contact while the window's jobs ran (a Deferred has a shape of
 * its own), and long jobs hold a hundred thousand contacts in flight. A later event of a contact
 * finds the latest window holding it among the windows in flight: a table by hash bucket of the
 * latest window to take any of its hashes says where to start looking (WindowIndex), since with
 * long jobs a hundred windows are in flight and probing each for every contact showed in profiles.
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
import { ContactSet, type EmailHash, emailHash } from "./contactSet.js"

export interface Ticket {
  readonly email: string
  released: boolean
  next: Deferred.Deferred<void> | undefined
  /** The previous event's end, when it had not ended as this one was taken. */
  readonly turn: Deferred.Deferred<void> | undefined
}

/** A bulk window's place in its contacts' lines: one for all of them. */
export interface WindowTicket {
  /** Its place among the windows, from 1 in the order they were taken. */
  readonly seq: number
  readonly contacts: ContactSet
  released: boolean
  next: Deferred.Deferred<void> | undefined
  /** The ends of the earlier events and windows of its contacts that had not ended as it was taken, each once. */
  readonly turns: ReadonlyArray<Deferred.Deferred<void>>
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
  /** The next place in the lines of all these contacts, as hashes (the order's `hash`), each once; taken in input order. */
  readonly takeWindow: (hashes: ArrayLike<number>) => WindowTicket
  /** Waits for the earlier events and windows of the window's contacts to end. */
  readonly windowTurn: (ticket: WindowTicket) => Effect.Effect<void>
  /** The window ended: its contacts' next events may go. */
  readonly releaseWindow: (ticket: WindowTicket) => Effect.Effect<void>
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

/**
 * The latest window to take a hash of each bucket, by its `seq`: no window in flight that holds a
 * hash is later than its bucket's (a bucket is only ever raised), so the search for the latest
 * window that may hold it starts there, and ends at once for a bucket no window in flight took.
 * Made with the first window: the per-event path never needs it.
 */
class WindowIndex {
  private readonly latest: Int32Array
  constructor(buckets: number) {
    this.latest = new Int32Array(buckets)
  }
  /** The highest `seq` a window holding `h` may have (0: none was taken). */
  bound(h: number): number {
    return this.latest[(h >>> 0) & (this.latest.length - 1)]!
  }
  took(h: number, seq: number): void {
    this.latest[(h >>> 0) & (this.latest.length - 1)] = seq
  }
}

/** Buckets of the window index: 2 MB, about three for every contact long jobs hold in flight. */
const WINDOW_BUCKETS = 2 ** 19

/** `hash` is the windows' (a test's may collide on purpose); `buckets` the window index's, a power of two (a test's few). */
export const makeOrder = (patience: Duration.Duration, hash: EmailHash = emailHash, buckets = WINDOW_BUCKETS): Order => {
  const tails = new Map<string, Ticket>()
  /** Windows in flight, in the order they were taken (by `seq`). */
  const windows: Array<WindowTicket> = []
  let index: WindowIndex | undefined
  let taken = 0
  const fences = makeFences()
  const releaseNow = (t: Ticket) => {
    t.released = true
    if (tails.get(t.email) === t) tails.delete(t.email)
    // Completed in place: the next event's lane, waiting on it, is resumed by its scheduler.
    if (t.next !== undefined) Deferred.unsafeDone(t.next, Exit.void)
  }
  const endOf = (held: { next: Deferred.Deferred<void> | undefined }) => held.next ??= Deferred.unsafeMake<void>(FiberId.none)
  /** The latest window in flight that may hold the contact. */
  const latest = (h: number): WindowTicket | undefined => {
    const bound = index === undefined ? 0 : index.bound(h)
    if (bound === 0 || windows.length === 0 || bound < windows[0]!.seq) return undefined
    // The last window in flight not later than the bound (binary search: windows are by seq).
    let lo = 0
    let hi = windows.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if (windows[mid]!.seq <= bound) lo = mid
      else hi = mid - 1
    }
    for (let i = lo; i >= 0; i--) if (windows[i]!.contacts.has(h)) return windows[i]
    return undefined
  }
  return {
    take: (email) => {
      const previous = tails.get(email)
      let turn: Deferred.Deferred<void> | undefined
      // A ticket in `tails` was taken after any window holding its contact (a window takes the
      // contact's place from `tails`), so it is the one to wait for.
      if (previous !== undefined && !previous.released) turn = endOf(previous)
      else if (windows.length > 0) {
        const w = latest(hash(email))
        if (w !== undefined) turn = endOf(w)
      }
      const mine: Ticket = { email, released: false, next: undefined, turn }
      tails.set(email, mine)
      return mine
    },
    turn: (t) => t.turn === undefined ? Effect.void : Deferred.await(t.turn),
    release: (t) => Effect.sync(() => releaseNow(t)),
    releaseNow,
    takeWindow: (hashes) => {
      const turns = new Set<Deferred.Deferred<void>>()
      const contacts = new ContactSet(hashes.length)
      const seq = ++taken
      index ??= new WindowIndex(buckets)
      for (let i = 0; i < hashes.length; i++) {
        const h = hashes[i]!
        // After the latest window that may hold it too, so the windows of one hash form one chain:
        // with colliding hashes the latest found by hash may not be the one that holds the contact.
        const w = latest(h)
        if (w !== undefined) turns.add(endOf(w))
        contacts.add(h)
        index.took(h, seq)
      }
      // Single events in flight are few. The window takes the place of each one it may hold: one
      // that only shares a hash waits for it all the same, and its contact's next event for the window.
      for (const [email, previous] of tails) {
        if (!contacts.has(hash(email))) continue
        tails.delete(email)
        if (!previous.released) turns.add(endOf(previous))
      }
      const mine: WindowTicket = { seq, contacts, released: false, next: undefined, turns: [...turns] }
      windows.push(mine)
      return mine
    },
    windowTurn: (w) => Effect.forEach(w.turns, Deferred.await, { discard: true }),
    releaseWindow: (w) =>
      Effect.suspend(() => {
        if (w.released) return Effect.void
        w.released = true
        const i = windows.indexOf(w)
        if (i >= 0) windows.splice(i, 1)
        return w.next === undefined ? Effect.void : Deferred.succeed(w.next, undefined)
      }),
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
