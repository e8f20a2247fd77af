/**
 * Erasures remembered (GDPR deletion requests): a contact's keyed hash and when it was erased, so
 * that an event older than the erasure (a late event, a replay, a backfill) never brings the
 * contact back, while a newer one (a new sign-up) may. The address itself is never kept: the key is
 * an HMAC-SHA256 of the normalised address under a secret key of the state (a per-state-dir file
 * for the CLI, see Run/StateStore.ts), so a tombstone cannot be read back to an address, nor
 * matched against one without the secret.
 *
 * A tombstone also remembers whether the contact was unsubscribed when it was erased (`unsub`), so
 * the suppression outlives the address it was kept under (Suppressions forgets it on erasure): a
 * newer event's standing consent does not subscribe the contact again; an explicit `Subscribed`
 * does, and clears the flag (`lift`).
 *
 * One set per process, read and changed by delivery at each event's turn, after the contact's
 * earlier events: an erasure earlier in the input is always seen by the events after it.
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { createHmac, randomBytes } from "node:crypto"

/** An erasure: when (epoch ms), and whether the contact was unsubscribed then (absent: it was not, or not known). */
export interface Tombstone {
  readonly at: number
  readonly unsub?: true
}

/** Told of delivery's own erasures and lifts, e.g. to keep them in the state file or share them with other workers. */
export type TombstoneListener = (key: string, tombstone: Tombstone) => void

export interface TombstoneSet {
  /** The keyed hash an address is known by (base64url): never the address. */
  readonly key: (email: string) => string
  /** When the contact (a normalised address) was last erased (epoch ms), if it was. */
  readonly erasedAt: (email: string) => number | undefined
  /** The contact's last erasure, if it was erased. */
  readonly get: (email: string) => Tombstone | undefined
  /** Delivery's own erasure: kept (see `merge`) and told to listeners. */
  readonly record: (email: string, tombstone: Tombstone) => void
  /** Delivery's own explicit `Subscribed` of an erased contact: its `unsub` is cleared, and listeners told. */
  readonly lift: (email: string) => void
  /** Learnt from elsewhere (the state file, another worker): kept (see `merge`); listeners are not told. */
  readonly learn: (key: string, tombstone: Tombstone) => void
  /**
   * An erasure decided in input order and not yet done (a bulk window's, decided before it is
   * sent): until it is recorded, an older explicit `Subscribed` lifts nothing (it will be dropped).
   */
  readonly pending: (email: string, at: number) => void
  /** The latest erasure decided and not yet recorded, if any (epoch ms). */
  readonly pendingAt: (email: string) => number | undefined
  /** Calls `listener` for each erasure recorded or lifted from now on; the result stops that. */
  readonly observe: (listener: TombstoneListener) => () => void
  readonly entries: () => IterableIterator<readonly [string, Tombstone]>
  readonly size: () => number
}

/** `secret` is asked for at the first hash: a state file's key is made only once something needs it. */
export const makeTombstones = (secret: () => Redacted.Redacted<Uint8Array>): TombstoneSet => {
  const byKey = new Map<string, Tombstone>()
  // Few at a time: an erasure is pending from its window's decisions until it is sent.
  const decided = new Map<string, number>()
  const listeners = new Set<TombstoneListener>()
  // A contact is asked about twice in a row (its suppressions, then its send): one hash for both.
  let lastEmail: string | undefined
  let lastKey = ""
  const key = (email: string) => {
    if (email !== lastEmail) {
      lastKey = createHmac("sha256", Redacted.value(secret())).update(email).digest("base64url")
      lastEmail = email
    }
    return lastKey
  }
  const keep = (k: string, t: Tombstone): Tombstone | undefined => {
    const known = byKey.get(k)
    const kept = merge(known, t)
    if (kept === known) return undefined
    byKey.set(k, kept)
    return kept
  }
  const tell = (k: string, t: Tombstone | undefined) => {
    if (t !== undefined) for (const l of listeners) l(k, t)
  }
  // Most contacts have none: the hash is paid only when some erasure is known.
  const get = (email: string) => byKey.size === 0 ? undefined : byKey.get(key(email))
  return {
    key,
    erasedAt: (email) => get(email)?.at,
    get,
    record: (email, t) => {
      const k = key(email)
      decided.delete(k)
      tell(k, keep(k, t))
    },
    pending: (email, at) => {
      const k = key(email)
      decided.set(k, Math.max(decided.get(k) ?? -Infinity, at))
    },
    pendingAt: (email) => decided.size === 0 ? undefined : decided.get(key(email)),
    lift: (email) => {
      const known = get(email)
      if (known?.unsub !== true) return
      const k = key(email)
      tell(k, keep(k, { at: known.at }))
    },
    learn: (k, t) => void keep(k, t),
    observe: (listener) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    entries: () => byKey.entries(),
    size: () => byKey.size
  }
}

/**
 * Two tombstones of one contact as one: the later erasure wins; of one erasure, a lifted one (an
 * explicit `Subscribed` after it) wins, so a state file or a replayed record cannot bring back an
 * unsubscribe that consent lifted. Returns `known` itself when nothing changes.
 */
export const merge = (known: Tombstone | undefined, t: Tombstone): Tombstone =>
  known === undefined || t.at > known.at ? t : t.at === known.at && known.unsub === true && t.unsub !== true ? t : known

/** A secret for this process alone: its hashes mean nothing to another. */
export const randomSecret = () => {
  const secret = Redacted.make(new Uint8Array(randomBytes(32)))
  return () => secret
}

export class Tombstones extends Context.Tag("signal-mailjet/Tombstones")<Tombstones, TombstoneSet>() {
  /** Kept in memory under a random key: this process's erasures only, forgotten when it ends. */
  static readonly layerMemory = Layer.sync(Tombstones, () => makeTombstones(randomSecret()))
}

/** Why an event older than an erasure of its contact is dropped; fixed text, fit for a metric label. */
export const ERASED_AFTER =
  "the contact was erased by a deletion request made at or after the time of this event; an older event does not bring it back"
/** Why an event without a (readable) timestamp is dropped once its contact was erased. */
export const ERASED_UNDATED =
  "the contact was erased by a deletion request, and this event has no readable timestamp to show it is newer; give it one to re-create the contact"

/** Why standing consent does not subscribe an erased contact that was unsubscribed when erased (a `demoted` reason). */
export const unsubscribedBeforeErasure = (t: Tombstone) =>
  `unsubscribed before the contact was erased by a deletion request (${new Date(t.at).toISOString()}); only an explicit Subscribed subscribes it again`

/** When an event happened, from its own `timestamp`: NaN when it has none that reads as a time. */
export const eventTime = (timestamp: string | undefined): number => timestamp === undefined ? Number.NaN : Date.parse(timestamp)

/**
 * The drop reason for an event of a contact erased at `erasedAt`, or undefined when the event is
 * newer and may go. An event at the very time of the erasure is not newer (a replayed erasure, too).
 */
export const tombstoneVerdict = (erasedAt: number | undefined, eventAt: number | undefined): string | undefined =>
  erasedAt === undefined ? undefined : eventAt === undefined || Number.isNaN(eventAt) ? ERASED_UNDATED : eventAt <= erasedAt ? ERASED_AFTER : undefined
