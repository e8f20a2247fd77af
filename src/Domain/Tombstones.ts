/**
 * Erasures remembered (GDPR deletion requests): a contact's keyed hash and when it was erased, so
 * that an event older than the erasure (a late event, a replay, a backfill) never brings the
 * contact back, while a newer one (a new sign-up) may. The address itself is never kept: the key is
 * an HMAC-SHA256 of the normalised address under a secret key of the state (a per-state-dir file
 * for the CLI, see Run/StateStore.ts), so a tombstone cannot be read back to an address, nor
 * matched against one without the secret.
 *
 * One set per process, read and changed by delivery at each event's turn, after the contact's
 * earlier events: an erasure earlier in the input is always seen by the events after it.
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { createHmac, randomBytes } from "node:crypto"

/** Told of delivery's own erasures, e.g. to keep them in the state file or share them with other workers. */
export type TombstoneListener = (key: string, at: number) => void

export interface TombstoneSet {
  /** The keyed hash an address is known by (base64url): never the address. */
  readonly key: (email: string) => string
  /** When the contact (a normalised address) was last erased (epoch ms), if it was. */
  readonly erasedAt: (email: string) => number | undefined
  /** Delivery's own erasure: kept (a later time wins) and told to listeners. */
  readonly record: (email: string, at: number) => void
  /** Learnt from elsewhere (the state file, another worker): kept, a later time wins; listeners are not told. */
  readonly learn: (key: string, at: number) => void
  /** Calls `listener` for each erasure recorded from now on; the result stops that. */
  readonly observe: (listener: TombstoneListener) => () => void
  readonly entries: () => IterableIterator<readonly [string, number]>
  readonly size: () => number
}

/** `secret` is asked for at the first hash: a state file's key is made only once something needs it. */
export const makeTombstones = (secret: () => Redacted.Redacted<Uint8Array>): TombstoneSet => {
  const byKey = new Map<string, number>()
  const listeners = new Set<TombstoneListener>()
  const key = (email: string) => createHmac("sha256", Redacted.value(secret())).update(email).digest("base64url")
  const keep = (k: string, at: number): boolean => {
    const known = byKey.get(k)
    if (known !== undefined && known >= at) return false
    byKey.set(k, at)
    return true
  }
  return {
    key,
    // Most contacts have none: the hash is paid only when some erasure is known.
    erasedAt: (email) => byKey.size === 0 ? undefined : byKey.get(key(email)),
    record: (email, at) => {
      const k = key(email)
      if (keep(k, at)) for (const l of listeners) l(k, at)
    },
    learn: (k, at) => void keep(k, at),
    observe: (listener) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    entries: () => byKey.entries(),
    size: () => byKey.size
  }
}

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

/**
 * The drop reason for an event of a contact erased at `erasedAt`, or undefined when the event is
 * newer and may go. An event at the very time of the erasure is not newer (a replayed erasure, too).
 */
export const tombstoneVerdict = (erasedAt: number | undefined, eventAt: number | undefined): string | undefined =>
  erasedAt === undefined ? undefined : eventAt === undefined || Number.isNaN(eventAt) ? ERASED_UNDATED : eventAt <= erasedAt ? ERASED_AFTER : undefined
