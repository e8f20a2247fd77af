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
  /** Contacts sent one by one (replays, erasures), and their events, the only ones kept. */
  readonly single: ReadonlyArray<readonly [Group, undefined]>
  readonly replays: ReadonlyArray<Send | undefined>
}

/**
 * A window's contacts, each folded into one update, in jobs of at most `bulkSize` per action.
 * `erased` tells a contact erased before the window (a tombstone): its events are measured against
 * the erasure one by one, as are those of a contact with an erasure in the window, which is never
 * sent in a job. Events before the erasure go before it, each in its turn, so the erasure still
 * comes last of them; after it, an older event is dropped and a newer one re-creates the contact.
 */
export const planWindow = (sends: ReadonlyArray<Send>, bulkSize: number, erased: (email: string) => boolean = () => false): Plan => {
  const byContact = new Map<string, Group>()
  for (let i = 0; i < sends.length; i++) {
    const email = sends[i]!.email
    const g = byContact.get(email)
    if (g === undefined) byContact.set(email, i)
    else if (typeof g === "number") byContact.set(email, [g, i])
    else g.push(i)
  }
  const single: Array<readonly [Group, undefined]> = []
  const replays: Array<Send | undefined> = []
  const jobs = new Map<Action, { readonly bodies: Array<Send["body"]>; readonly groups: Array<Group> }>()
  for (const g of byContact.values()) {
    // Replays are guarded per event (ReplayGuard reads Mailjet first), erasures are one call at a
    // time in order with the contact's other events: their contacts go one by one.
    if (indices(g).some((i) => sends[i]!.replay !== undefined || sends[i]!.erase === true) || erased(sends[indices(g)[0]!]!.email)) {
      single.push([g, undefined])
      for (const i of indices(g)) replays[i] = sends[i]
      continue
    }
    const body = typeof g === "number" ? sends[g]!.body : foldUpdates(g.map((i) => sends[i]!.body))
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
  return { size: sends.length, batches, single, replays }
}
