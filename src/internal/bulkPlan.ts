/**
 * Bulk, part one: plan. A window's updates → each contact's folded into one (Fold.ts) → grouped by
 * action into jobs of at most `bulkSize` contacts. Pure: no call, no clock.
 *
 * A contact is sent whole by one path (one job, or one by one for a replay, which is guarded per
 * event, and for a contact erased in the window or before it), so its updates never overtake each
 * other inside a window.
 */
import { foldUpdates } from "../Delivery/Fold.js"
import { contactEntry, entryBody } from "../Mailjet/MailjetShapes.js"
import type { Action } from "../Preset/Preset.js"
import type { PackedSend } from "../Delivery/Prepare.js"
import { byteLengthAt, bytesAt, copyAt, type Pieces } from "./textPieces.js"

/** One contact's events in a window: their places in it (one place needs no array). */
export type Group = number | Array<number>
export const indices = (g: Group): ReadonlyArray<number> => typeof g === "number" ? [g] : g

/**
 * One job of a window: its contacts as the JSON array it sends until it is sent, then their places
 * alone (their emails are read back from the window's pack if ever needed: bulkSettle).
 */
export interface Batch {
  readonly action: Action
  /** `[contact,…]`, UTF-8: each contact as contactEntry writes it. */
  contacts: Uint8Array | undefined
  /** Each contact's events: their places in the window. */
  readonly groups: ReadonlyArray<Group>
}

export interface Plan {
  readonly size: number
  readonly batches: ReadonlyArray<Batch>
  /** Contacts sent one by one (replays, erasures): their events, whose updates are read again to send them. */
  readonly single: ReadonlyArray<readonly [Group, undefined]>
}

const COMMA = 0x2c
/** The preset's own strings: an unusual update's action, read back by V8's serializer, is a string of its own. */
const ACTIONS: Readonly<Record<Action, Action>> = { addforce: "addforce", addnoforce: "addnoforce", unsub: "unsub", remove: "remove" }

/**
 * A job's Contacts array: each contact as the packed update it copies (its place) or as its folded
 * JSON, written once the job is full, into a buffer of its own size. Grown by doubling as it was
 * planned, then copied into the request's body, a job's bytes were allocated four times over, and
 * the copies waited for the call budget long enough to be collected only with the old generation.
 */
class ContactsJson {
  /** The window's packed contacts, which `copy` refers to. */
  constructor(private readonly contacts: Pieces) {}
  readonly groups: Array<Group> = []
  private readonly parts: Array<number | string> = []
  /** The brackets and each contact's bytes; commas are added as it is written. */
  private bytes = 2
  /** The `k`th update's contact, as packed. */
  copy(g: Group, k: number) {
    this.bytes += byteLengthAt(this.contacts, k)
    this.parts.push(k)
    this.groups.push(g)
  }
  /** A contact whose updates were folded into one. */
  write(g: Group, json: string) {
    this.bytes += Buffer.byteLength(json)
    this.parts.push(json)
    this.groups.push(g)
  }
  finish(action: Action): Batch {
    const { contacts, parts } = this
    const bytes = Buffer.allocUnsafe(this.bytes + Math.max(parts.length - 1, 0))
    bytes[0] = 0x5b // [
    let used = 1
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) bytes[used++] = COMMA
      const p = parts[i]!
      used += typeof p === "number" ? copyAt(contacts, p, bytes, used) : bytes.write(p, used, "utf8")
    }
    bytes[used] = 0x5d // ]
    return { action, contacts: bytes, groups: this.groups }
  }
}

/** A window's updates' contacts as their jobs send them, and who each is: its first update's place. */
export interface WindowContacts {
  readonly entries: Pieces
  readonly firsts: Int32Array
}

/**
 * A window's contacts, each folded into one update, in jobs of at most `bulkSize` per action.
 * `erased` tells a contact erased before the window (a tombstone): its events are measured against
 * the erasure one by one, as are those of a contact with an erasure in the window, which is never
 * sent in a job. Events before the erasure go before it, each in its turn, so the erasure still
 * comes last of them; after it, an older event is dropped and a newer one re-creates the contact.
 *
 * `sends` is read once, in order, and only each update's action is kept: `contacts` tells each
 * update's contact (as the window was gathered) and holds it as its job sends it, so a contact of
 * one update is copied from there into its job's body; one of several is read from there and
 * folded. A contact sent one by one is read again.
 */
export const planWindow = (
  sends: Iterable<PackedSend>,
  contacts: WindowContacts,
  bulkSize: number,
  erased: (email: string) => boolean = () => false
): Plan => {
  const { entries, firsts } = contacts
  // By each contact's first update's place; the actions as the preset's own strings.
  const groups: Array<Group> = []
  const actions: Array<Action> = []
  const alone = new Set<number>()
  for (const s of sends) {
    const i = actions.length
    // Resubscribing may have changed the action (Prepare's demote), never the contact.
    actions.push(ACTIONS[s.body.Action])
    const first = firsts[i]!
    // Replays are guarded per event (ReplayGuard reads Mailjet first), erasures are one call at a
    // time in order with the contact's other events: their contacts go one by one.
    if (s.replay !== undefined || s.erase === true || (first === i && erased(s.email))) alone.add(first)
    const g = groups[first]
    if (g === undefined) groups[first] = i
    else if (typeof g === "number") groups[first] = [g, i]
    else g.push(i)
  }
  const single: Array<readonly [Group, undefined]> = []
  const open = new Map<Action, ContactsJson>()
  const batches: Array<Batch> = []
  for (let first = 0; first < actions.length; first++) {
    const g = groups[first]
    if (g === undefined || firsts[first] !== first) continue
    if (alone.has(first)) {
      single.push([g, undefined])
      continue
    }
    // One update: copied as packed. Several: read back, folded and written again.
    const folded = typeof g === "number"
      ? undefined
      : foldUpdates(g.map((i) => entryBody(bytesAt(entries, i), actions[i]!)))
    const action = folded === undefined ? actions[g as number]! : folded.Action
    let job = open.get(action)
    if (job === undefined) open.set(action, job = new ContactsJson(entries))
    if (folded === undefined) job.copy(g, g as number)
    else job.write(g, contactEntry(folded))
    if (job.groups.length === bulkSize) {
      batches.push(job.finish(action))
      open.delete(action)
    }
  }
  for (const [action, job] of open) batches.push(job.finish(action))
  return { size: actions.length, batches, single }
}
