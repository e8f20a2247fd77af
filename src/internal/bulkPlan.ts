/**
 * Bulk, part one: plan. A window's updates → each contact's folded into one (Fold.ts) → grouped by
 * action into jobs of at most `bulkSize` contacts. Pure: no call, no clock.
 *
 * A contact is sent whole by one path (one job, or one by one for a replay, which is guarded per
 * event, and for a contact erased in the window or before it), so its updates never overtake each
 * other inside a window.
 */
import { foldUpdates } from "../Delivery/Fold.js"
import type { Action } from "../Preset/Preset.js"
import type { Send } from "./send.js"

/** One contact's events in a window: their places in it (one place needs no array). */
export type Group = number | Array<number>
export const indices = (g: Group): ReadonlyArray<number> => typeof g === "number" ? [g] : g

/**
 * One job of a window: its contacts' bodies until they are sent, then their places alone (their
 * emails are read back from the window's pack if ever needed: bulkSettle).
 */
export interface Batch {
  readonly action: Action
  bodies: ReadonlyArray<Send["body"]> | undefined
  /** Each contact's events: their places in the window. */
  readonly groups: ReadonlyArray<Group>
}

export interface Plan {
  readonly size: number
  readonly batches: ReadonlyArray<Batch>
  /** Contacts sent one by one (replays, erasures): their events, whose updates are read again to send them. */
  readonly single: ReadonlyArray<readonly [Group, undefined]>
}

/**
 * A window's contacts, each folded into one update, in jobs of at most `bulkSize` per action.
 * `erased` tells a contact erased before the window (a tombstone): its events are measured against
 * the erasure one by one, as are those of a contact with an erasure in the window, which is never
 * sent in a job. Events before the erasure go before it, each in its turn, so the erasure still
 * comes last of them; after it, an older event is dropped and a newer one re-creates the contact.
 *
 * `sends` is read once, in order, and only each update's body is kept (a window's updates whole
 * were most of its peak while its jobs were posted): a contact sent one by one is read again.
 */
export const planWindow = (sends: Iterable<Send>, bulkSize: number, erased: (email: string) => boolean = () => false): Plan => {
  const byContact = new Map<string, Group>()
  const bodies: Array<Send["body"]> = []
  const alone = new Set<string>()
  for (const s of sends) {
    const i = bodies.length
    bodies.push(s.body)
    // Replays are guarded per event (ReplayGuard reads Mailjet first), erasures are one call at a
    // time in order with the contact's other events: their contacts go one by one.
    if (s.replay !== undefined || s.erase === true) alone.add(s.email)
    const g = byContact.get(s.email)
    if (g === undefined) byContact.set(s.email, i)
    else if (typeof g === "number") byContact.set(s.email, [g, i])
    else g.push(i)
  }
  const single: Array<readonly [Group, undefined]> = []
  const jobs = new Map<Action, { readonly bodies: Array<Send["body"]>; readonly groups: Array<Group> }>()
  for (const [email, g] of byContact) {
    if (alone.has(email) || erased(email)) {
      single.push([g, undefined])
      continue
    }
    const body = typeof g === "number" ? bodies[g]! : foldUpdates(g.map((i) => bodies[i]!))
    let job = jobs.get(body.Action)
    if (job === undefined) jobs.set(body.Action, job = { bodies: [], groups: [] })
    job.bodies.push(body)
    job.groups.push(g)
  }
  const batches: Array<Batch> = []
  for (const [action, { bodies, groups }] of jobs) {
    for (let i = 0; i < bodies.length; i += bulkSize) {
      const part = bodies.slice(i, i + bulkSize)
      batches.push({ action, bodies: part, groups: groups.slice(i, i + bulkSize) })
    }
  }
  return { size: bodies.length, batches, single }
}
