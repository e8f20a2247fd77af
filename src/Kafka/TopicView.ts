/**
 * The list's view of who is unsubscribed (Mailjet/SuppressionSnapshot), kept on the group's
 * suppressions topic: the view's records carry their contact's ID, and one record, SNAPSHOT_KEY,
 * says when it was read from Mailjet. A worker that starts while it is fresh reads nothing of the
 * list; callbacks keep it current meanwhile.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { Consent } from "../Consent.js"
import { MailjetGateway } from "../Mailjet/MailjetGateway.js"
import { Preflight, preflightRetrying } from "../Mailjet/Preflight.js"
import { bring, type KeptEntry, SuppressionSnapshot } from "../Mailjet/SuppressionSnapshot.js"
import type { SuppressionSet } from "../Suppressions.js"
import type { Outgoing } from "./SuppressionWriter.js"

/** The record saying when the list's view on the topic was read from Mailjet. */
export const SNAPSHOT_KEY = "suppressions-view:taken-at"
const Taken = Schema.parseJson(Schema.Struct({ takenAt: Schema.Number }))
const decodeTaken = Schema.decodeUnknownOption(Taken)
const encodeTaken = Schema.encodeSync(Taken)

export const makeTopicView = <E extends { readonly message: string }>(options: {
  readonly topic: string
  readonly trustFor: Duration.Duration
  /** A view's entry as the topic stores a suppression. */
  readonly encode: (e: KeptEntry) => string
  /** Stored and read back (SuppressionTopic's `writeReadBack`). */
  readonly write: (records: ReadonlyArray<Outgoing>) => Effect.Effect<void, E>
}) => {
  const { topic } = options
  // As `follow` has read the topic so far; saved by the worker that read the view from Mailjet.
  let takenAt: number | undefined
  const entries = new Map<string, KeptEntry>()
  const snapshot = SuppressionSnapshot.of({
    load: Effect.sync(() => takenAt === undefined ? Option.none() : Option.some({ takenAt, entries: [...entries.values()] })),
    // The change, then the time: a worker that reads the time finds the view it dates. A list
    // with nobody unsubscribed leaves nothing to keep: reading it again is one call. A save that
    // dates nothing newer (a lift or an erasure, at the end) is on the topic already: `follow`
    // shares each lift as it happens.
    save: (kept, change) =>
      (kept.entries.length === 0 && change.removed.length === 0 && takenAt === undefined) ||
        (change.added.length === 0 && takenAt !== undefined && kept.takenAt <= takenAt)
        ? Effect.void
        : options.write([
          ...change.added.map((e) => ({ topic, key: e.email, value: options.encode(e) })),
          ...change.removed.map((e) => ({ topic, key: e.email, value: null })),
          { topic, key: SNAPSHOT_KEY, value: encodeTaken({ takenAt: kept.takenAt }) }
        ]).pipe(Effect.catchAll((e) => Effect.logWarning(`suppressions: the list's view is not kept for the group: ${e.message}`))),
    trustFor: options.trustFor
  })
  return {
    snapshot,
    /** SNAPSHOT_KEY's record, as `follow` reads it. */
    dated: (value: string | null | undefined) => {
      const taken = value === undefined || value === null ? Option.none() : decodeTaken(value)
      takenAt = Option.isSome(taken) ? taken.value.takenAt : undefined
    },
    /** An address's record: a suppression (with its contact's ID when it is the view's), or none: lifted. */
    held: (email: string, stored: { readonly id?: number | undefined; readonly at: string } | undefined) => {
      // Only what was read from the list is the view's: a callback's stays until lifted.
      if (stored?.id === undefined) entries.delete(email)
      else entries.set(email, { id: stored.id, email, at: stored.at })
    }
  }
}

/** Once the topic is read into `set`: the list's view, none read from Mailjet while the group's is fresh. */
export const bringView = (snapshot: typeof SuppressionSnapshot.Service, set: SuppressionSet) =>
  Effect.gen(function*() {
    if ((yield* Consent).resubscribe !== "explicit") return
    const report = yield* Preflight
    const gateway = yield* MailjetGateway.fromContext
    const b = yield* bring(set, { subscribers: report.list.subscriberCount, retrying: preflightRetrying(gateway) }).pipe(
      Effect.provideService(SuppressionSnapshot, snapshot)
    )
    yield* Effect.logInfo(
      b.unread === true
        ? "suppressions: the list's view is read in the background (too large to read before the first send); meanwhile consent granted asks Mailjet about its contact first"
        : `suppressions: the list's view: ${b.suppressed.length} unsubscribed known${b.pending === 0 ? "" : `, ${b.pending} read in the background`}`
    )
  })
