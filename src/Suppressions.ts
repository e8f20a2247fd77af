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
import * as Layer from "effect/Layer"
import { createHash } from "node:crypto"

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
}

export interface SuppressionSet {
  readonly get: (email: string) => Suppression | undefined
  /** Delivery's own: an `unsub` it sends. Listeners hear of a new one. */
  readonly add: (email: string, suppression: Suppression) => void
  /** Delivery's own: an explicit `Subscribed` it sends. Listeners hear of it when it lifted one. */
  readonly lift: (email: string) => void
  /** Learnt from elsewhere (Mailjet's callbacks, another worker): `undefined` lifts. Listeners are not told. */
  readonly learn: (email: string, suppression: Suppression | undefined) => void
  readonly observe: (listener: SuppressionListener) => void
  readonly size: () => number
}

/**
 * A run's own unsubscribe: its reason is written when read. A backfill unsubscribes hundreds of
 * thousands of contacts, and the set keeps each of them as its line number alone.
 */
export class UnsubscribedByLine implements Suppression {
  constructor(readonly line: number) {}
  get reason(): string {
    return `unsubscribed by the event on line ${this.line}`
  }
}

export const makeSuppressions = (initial: Iterable<readonly [string, Suppression]> = []): SuppressionSet => {
  const byEmail = new Map<string, Suppression | number>(initial)
  const listeners: Array<SuppressionListener> = []
  return {
    get: (email) => {
      const s = byEmail.get(email)
      return typeof s === "number" ? new UnsubscribedByLine(s) : s
    },
    add: (email, suppression) => {
      const known = byEmail.has(email)
      byEmail.set(email, suppression instanceof UnsubscribedByLine ? suppression.line : suppression)
      if (!known) for (const l of listeners) l.added(email, suppression)
    },
    lift: (email) => {
      if (byEmail.delete(email)) for (const l of listeners) l.lifted(email)
    },
    learn: (email, suppression) => {
      if (suppression === undefined) byEmail.delete(email)
      else byEmail.set(email, suppression)
    },
    observe: (listener) => {
      listeners.push(listener)
    },
    size: () => byEmail.size
  }
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
