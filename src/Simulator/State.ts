/**
 * The simulator's account: lists, contact properties (contactmetadata), contacts with their list
 * memberships, and the request log. Plain mutable maps, changed only by `Routes.ts` inside one
 * synchronous request, so every request is atomic.
 */
import type { Datatype } from "./Validation.js"

export type Membership = "subscribed" | "unsubscribed"

export interface SimulatedContact {
  readonly id: number
  readonly email: string
  readonly name: string
  readonly properties: Readonly<Record<string, unknown>>
  readonly lists: ReadonlyMap<number, Membership>
}

export interface RecordedRequest {
  readonly method: string
  /** The request target as sent (path and query). */
  readonly path: string
  /** Parsed JSON body; the raw text when it is not valid JSON; `undefined` when there was no body. */
  readonly body: unknown
  /** Status sent; 0 when the connection was reset instead. */
  readonly status: number
  /** Arrival time, epoch milliseconds. */
  readonly at: number
}

export interface ContactRow {
  readonly id: number
  readonly email: string
  name: string
  readonly createdAt: string
  lastUpdateAt: string
  readonly properties: Map<string, unknown>
  readonly lists: Map<number, Membership>
}

export interface ListRow {
  readonly id: number
  readonly name: string
  readonly address: string
  readonly createdAt: string
  subscribers: number
}

export type Namespace = "static" | "historic"

export interface MetadataRow {
  readonly id: number
  /** Stored lowercase (mailjet/api-documentation#20: names come back lowercased; partly UNCONFIRMED). */
  readonly name: string
  readonly datatype: Datatype
  readonly namespace: Namespace
}

export const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z")

const listAddress = (id: number): string => id.toString(36).padStart(9, "x")

export interface StateOptions {
  readonly lists: ReadonlyArray<{ readonly id: number; readonly name: string }>
  readonly properties: ReadonlyArray<{ readonly name: string; readonly datatype: Datatype }>
  readonly recordLimit: number
  readonly recordRequests: boolean
}

export const makeState = (options: StateOptions) => {
  const startedAt = isoSeconds(Date.now())

  const lists = new Map<number, ListRow>()
  for (const l of options.lists) {
    lists.set(l.id, { id: l.id, name: l.name, address: listAddress(l.id), createdAt: startedAt, subscribers: 0 })
  }
  const addList = (name: string, now: number): ListRow => {
    let id = 1
    for (const l of lists.keys()) id = Math.max(id, l + 1)
    const row: ListRow = { id, name, address: listAddress(id), createdAt: isoSeconds(now), subscribers: 0 }
    lists.set(id, row)
    return row
  }

  const metadataById = new Map<number, MetadataRow>()
  const metadataByName = new Map<string, MetadataRow>()
  let nextMetadataId = 1
  const defineMetadata = (name: string, datatype: Datatype, namespace: Namespace): MetadataRow => {
    const row: MetadataRow = { id: nextMetadataId++, name: name.toLowerCase(), datatype, namespace }
    metadataById.set(row.id, row)
    metadataByName.set(row.name, row)
    return row
  }
  for (const p of options.properties) {
    if (!metadataByName.has(p.name.toLowerCase())) defineMetadata(p.name, p.datatype, "static")
  }

  let contactsByEmail = new Map<string, ContactRow>()
  let contactsById = new Map<number, ContactRow>()
  let nextContactId = 1
  const addContact = (email: string, now: number): ContactRow => {
    const stamp = isoSeconds(now)
    const contact: ContactRow = {
      id: nextContactId++,
      email,
      name: "",
      createdAt: stamp,
      lastUpdateAt: stamp,
      properties: new Map(),
      lists: new Map()
    }
    contactsByEmail.set(email, contact)
    contactsById.set(contact.id, contact)
    return contact
  }

  const setMembership = (c: ContactRow, list: ListRow, next: Membership | undefined): void => {
    const previous = c.lists.get(list.id)
    if (previous === next) return
    if (previous === "subscribed") list.subscribers--
    if (next === "subscribed") list.subscribers++
    if (next === undefined) c.lists.delete(list.id)
    else c.lists.set(list.id, next)
  }

  const snapshot = (c: ContactRow): SimulatedContact => ({
    id: c.id,
    email: c.email,
    name: c.name,
    properties: Object.fromEntries(c.properties),
    lists: new Map(c.lists)
  })

  // Recorded requests: a ring buffer, so memory stays bounded under a benchmark.
  const recordLimit = Math.max(1, options.recordLimit)
  let records: Array<RecordedRequest> = []
  let recordHead = 0
  const record = (r: RecordedRequest): void => {
    if (records.length < recordLimit) records.push(r)
    else {
      records[recordHead] = r
      recordHead = (recordHead + 1) % recordLimit
    }
  }

  return {
    lists,
    addList,
    metadataById,
    metadataByName,
    defineMetadata,
    contactByEmail: (email: string) => contactsByEmail.get(email.toLowerCase()),
    contactById: (id: number) => contactsById.get(id),
    allContacts: () => [...contactsById.values()],
    addContact,
    setMembership,
    snapshot,
    record,
    recording: options.recordRequests,
    requests: (): ReadonlyArray<RecordedRequest> =>
      records.length < recordLimit ? records.slice() : [...records.slice(recordHead), ...records.slice(0, recordHead)],
    /** Clears contacts (ContactIDs restart at 1) and the log; keeps lists and properties. */
    reset: (): void => {
      contactsByEmail = new Map()
      contactsById = new Map()
      nextContactId = 1
      for (const l of lists.values()) l.subscribers = 0
      records = []
      recordHead = 0
    }
  }
}

export type State = ReturnType<typeof makeState>
