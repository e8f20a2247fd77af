/**
 * Contacts that standing consent must not re-subscribe: Mailjet holds them as unsubscribed (by the
 * recipient's link, a spam complaint, a hard bounce, or an earlier `unsub`). Only an explicit
 * `Subscribed` event (a preset rule whose action is `addforce`) lifts a suppression.
 *
 * Read and changed in input order by delivery's sequential stage, so each contact's events see
 * the suppressions their own earlier events made, as Mailjet would have them in order.
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"

export interface Suppression {
  /** Why, as the outcome line says it: "unsubscribed in Mailjet at …", "unsubscribed by line 3". */
  readonly reason: string
}

export interface SuppressionSet {
  readonly get: (email: string) => Suppression | undefined
  readonly add: (email: string, suppression: Suppression) => void
  readonly lift: (email: string) => void
  readonly size: () => number
}

export const makeSuppressions = (initial: Iterable<readonly [string, Suppression]> = []): SuppressionSet => {
  const byEmail = new Map(initial)
  return {
    get: (email) => byEmail.get(email),
    add: (email, suppression) => {
      byEmail.set(email, suppression)
    },
    lift: (email) => {
      byEmail.delete(email)
    },
    size: () => byEmail.size
  }
}

export class Suppressions extends Context.Tag("signal-mailjet/Suppressions")<Suppressions, SuppressionSet>() {
  /** None known at start: only the run's own unsubscribes suppress. */
  static readonly layerEmpty = Layer.sync(Suppressions, () => makeSuppressions())
}
