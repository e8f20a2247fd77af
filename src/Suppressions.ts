/**
 * Contacts that standing consent must not re-subscribe: Mailjet holds them as unsubscribed (by the
 * recipient's link, a spam complaint, a hard bounce, or an earlier `unsub`). Only an explicit
 * `Subscribed` event (a preset rule whose action is `addforce`) lifts a suppression.
 *
 * Read and changed by delivery just before each send, once the contact's earlier events are done,
 * so each contact's events see the suppressions their own earlier events made, as Mailjet would
 * have them in order, and one learnt while an event waited.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createHash } from "node:crypto"
import { LineTable } from "./Domain/LineTable.js"

export interface Suppression {
  /** Why, as the outcome line says it: "unsubscribed in Mailjet at …", "unsubscribed by line 3". */
  readonly reason: string
  /** When Mailjet's event happened (ISO), when known. */
  readonly at?: string
}

/** Told of delivery's own changes, e.g. to share them with the other workers (see SuppressionTopic). */
export interface SuppressionListener {
  readonly added: (email: string, suppression: Suppression) => void
  readonly lifted: (email: string) => void
  /** One learnt from elsewhere that the set did not hold (the list's view read in the background, an ask). */
  readonly learnt?: (email: string, suppression: Suppression) => void
}

export interface SuppressionSet {
  readonly get: (email: string) => Suppression | undefined
  /** Delivery's own: an `unsub` it sends. Listeners hear of a new one. */
  readonly add: (email: string, suppression: Suppression) => void
  /** Delivery's own: an explicit `Subscribed` it sends. Listeners hear of it when it lifted one. */
  readonly lift: (email: string) => void
  /**
   * Delivery's own: the contact was erased, so its address is not kept (its tombstone keeps whether
   * it was unsubscribed, Domain/Tombstones.ts). Listeners hear `lifted` when one was held, so a
   * shared copy lets go of the address too.
   */
  readonly forget: (email: string) => void
  /** Learnt from elsewhere (Mailjet's callbacks, another worker, the list's view): `undefined` lifts. Only `learnt` listeners are told, of a new one. */
  readonly learn: (email: string, suppression: Suppression | undefined) => void
  readonly observe: (listener: SuppressionListener) => void
  readonly size: () => number
  /**
   * While the list's view is still being read (SuppressionSnapshot): what asks Mailjet about this
   * one contact and learns the answer, to be run (paced) before its standing consent is sent.
   * Undefined when the set can answer already: the view is whole, or the contact was asked.
   */
  readonly asking: (email: string) => Effect.Effect<void, AskError> | undefined
  /** Done once the list's whole view is in the set: what a bulk window waits for instead of asking per contact. */
  readonly whole: Effect.Effect<void>
  /**
   * True once the view is whole; false once its reading gave up (asks go on): what a caller that
   * only wants the view, not its guarantee, waits for (`deliver --feedback`).
   */
  readonly settled: Effect.Effect<boolean>
  /** The view is being read: `asking` asks through `ask` until `complete`; `gaveUp` when it will not be whole. */
  readonly reading: (ask: (email: string) => Effect.Effect<Suppression | undefined, AskError>) => {
    readonly complete: () => void
    readonly gaveUp: () => void
  }
  /**
   * From now on, the addresses any change touches (add, lift, forget, learn): a view read from
   * Mailjet meanwhile is older than those changes, and must not undo them (SuppressionSnapshot).
   */
  readonly touching: () => Touched
}

/**
 * What asking Mailjet about one contact may fail with (the gateway retries the transient ones):
 * Mailjet/MailjetError.ts's errors of these tags, named by shape (this module is below Mailjet's).
 */
export interface AskError {
  readonly _tag: "Unauthorized" | "RateLimited" | "MailjetUnavailable"
  readonly message: string
}

export interface Touched {
  readonly has: (email: string) => boolean
  readonly close: () => void
}

/**
 * A run's own unsubscribe: its reason is written when read. A backfill unsubscribes hundreds of
 * thousands of contacts, and the set keeps each of them as its line number alone (LineTable).
 */
export class UnsubscribedByLine implements Suppression {
  constructor(readonly line: number) {}
  get reason(): string {
    return `unsubscribed by the event on line ${this.line}`
  }
}

export const makeSuppressions = (initial: Iterable<readonly [string, Suppression]> = []): SuppressionSet => {
  // An email is in one of the two at most: learnt (with its reason) or the run's own (a line).
  const learnt = new Map<string, Suppression>(initial)
  const own = new LineTable()
  const listeners: Array<SuppressionListener> = []
  const touches: Array<Set<string>> = []
  const touch = (email: string) => {
    for (const t of touches) t.add(email)
  }
  const heard = (email: string, s: Suppression) => {
    for (const l of listeners) l.learnt?.(email, s)
  }
  const drop = (email: string) => {
    touch(email)
    const held = learnt.delete(email) || own.delete(email)
    if (held) for (const l of listeners) l.lifted(email)
  }
  // The list's view being read: contacts asked about one by one meanwhile, and who waits for it whole.
  let ask: ((email: string) => Effect.Effect<Suppression | undefined, AskError>) | undefined
  let asked = new Set<string>()
  const waiting = new Set<(whole: true) => void>()
  const settling = new Set<(whole: boolean) => void>()
  let gaveUp = false
  return {
    get: (email) => {
      const s = learnt.get(email)
      if (s !== undefined) return s
      const line = own.get(email)
      return line === undefined ? undefined : new UnsubscribedByLine(line)
    },
    add: (email, suppression) => {
      touch(email)
      let known: boolean
      if (suppression instanceof UnsubscribedByLine) {
        const wasLearnt = learnt.delete(email)
        known = !own.set(email, suppression.line) || wasLearnt
      } else {
        known = own.delete(email) || learnt.has(email)
        learnt.set(email, suppression)
      }
      if (!known) for (const l of listeners) l.added(email, suppression)
    },
    lift: drop,
    // The same for the shared copy: the address's record is deleted.
    forget: drop,
    learn: (email, suppression) => {
      touch(email)
      const held = own.delete(email) || learnt.has(email)
      if (suppression === undefined) learnt.delete(email)
      else {
        learnt.set(email, suppression)
        if (!held) heard(email, suppression)
      }
    },
    observe: (listener) => {
      listeners.push(listener)
    },
    size: () => learnt.size + own.size,
    asking: (email) => {
      if (ask === undefined || asked.has(email)) return undefined
      return Effect.map(ask(email), (s) => {
        asked.add(email)
        // Only an unsubscribe is learnt: a change made meanwhile (a callback, a lift) is newer.
        if (s !== undefined && learnt.get(email) === undefined && own.get(email) === undefined) {
          touch(email)
          learnt.set(email, s)
          heard(email, s)
        }
      })
    },
    whole: Effect.suspend(() => ask === undefined ? Effect.void : Effect.asVoid(waitIn(waiting))),
    settled: Effect.suspend(() => ask === undefined || gaveUp ? Effect.succeed(!gaveUp) : waitIn(settling)),
    reading: (given) => {
      ask = given
      gaveUp = false
      return {
        complete: () => {
          if (ask !== given) return
          ask = undefined
          asked = new Set()
          wake(waiting, true)
          wake(settling, true)
        },
        gaveUp: () => {
          if (ask !== given) return
          gaveUp = true
          wake(settling, false)
        }
      }
    },
    touching: () => {
      const t = new Set<string>()
      touches.push(t)
      return {
        has: (email) => t.has(email),
        close: () => {
          const i = touches.indexOf(t)
          if (i >= 0) touches.splice(i, 1)
        }
      }
    }
  }
}

/** Waits in `waiters` until `wake` calls it; leaves them if interrupted. */
const waitIn = <A>(waiters: Set<(a: A) => void>): Effect.Effect<A> =>
  Effect.async<A>((resume) => {
    const done = (a: A) => resume(Effect.succeed(a))
    waiters.add(done)
    return Effect.sync(() => {
      waiters.delete(done)
    })
  })

const wake = <A>(waiters: Set<(a: A) => void>, a: A) => {
  const woken = [...waiters]
  waiters.clear()
  for (const w of woken) w(a)
}

export class Suppressions extends Context.Tag("signal-mailjet/Suppressions")<Suppressions, SuppressionSet>() {
  /** None known at start: only the run's own unsubscribes suppress. */
  static readonly layerEmpty = Layer.sync(Suppressions, () => makeSuppressions())
}

/** A suppression learnt from Mailjet (or sent by this run), with what it came from. */
export interface Learnt {
  /** Lowercase. */
  readonly email: string
  /** As the outcome line's `demoted` says it. */
  readonly reason: string
  /** Mailjet's event: `unsub`, `spam`, `bounce` (hard), `blocked`; `unsub` also for the list's unsubscribed. */
  readonly event: string
  /** ISO time of the event, when known. */
  readonly at: string
}

/**
 * The Signal event a consent system can consume to catch up with Mailjet (README, "Consent loop"):
 * `deliver --feedback FILE` writes them, `serve` sends them to `KAFKA_FEEDBACK_TOPIC`.
 */
export const feedbackEvent = (l: Learnt) => ({
  type: "track",
  event: "Mailjet Unsubscribed",
  // The same suppression gives the same id, so a consumer can drop repeats.
  messageId: `mailjet-${l.event}-${createHash("sha256").update(`${l.email} ${l.at}`).digest("hex").slice(0, 24)}`,
  ...(l.at === "" ? {} : { timestamp: l.at }),
  traits: { email: l.email },
  properties: { email: l.email, reason: l.event, detail: l.reason, source: "mailjet" }
})
