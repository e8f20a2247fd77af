/**
 * The simulator's account: lists, contact properties (contactmetadata), contacts with their list
 * memberships, and the request log. Plain mutable maps, changed only by `Routes.ts` inside one
 * synchronous request, so every request is atomic.
 */

/** A contact property's datatype, as Mailjet names it. */
export type Datatype = "str" | "int" | "float" | "bool" | "datetime"

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

/** A contact's place in one list: a `listrecipient` resource of its own, with its own ID. */
export interface RecipientRow {
  readonly id: number
  readonly contactId: number
  readonly listId: number
  status: Membership
  /** "" until first subscribed (a contact unsubscribed before it was ever added has none). */
  subscribedAt: string
  unsubscribedAt: string
}

export interface ContactRow {
  readonly id: number
  readonly email: string
  name: string
  readonly createdAt: string
  readonly properties: Map<string, unknown>
  readonly lists: Map<number, RecipientRow>
}

export interface ListRow {
  readonly id: number
  readonly name: string
  readonly address: string
  readonly createdAt: string
  subscribers: number
  /** A deleted list stays readable, with `IsDeleted: true` (VCR `deletes_list_fields.yml`). */
  deleted: boolean
}

export type Namespace = "static" | "historic"

/**
 * The properties a fresh Mailjet account has: VCR `Mailjet_Resource/contactdata/should_not_be_nil.yml`
 * (2021) lists exactly these on a contact, `newsletter_sub` holding "N", so all are strings. No
 * `first_name`/`last_name`: a new account has none of the Default preset's properties.
 */
export const FRESH_ACCOUNT_PROPERTIES: ReadonlyArray<{ readonly name: string; readonly datatype: Datatype }> = [
  { name: "firstname", datatype: "str" },
  { name: "name", datatype: "str" },
  { name: "country", datatype: "str" },
  { name: "newsletter_sub", datatype: "str" }
]

export interface MetadataRow {
  readonly id: number
  /** Stored lowercase (mailjet/api-documentation#20: names come back lowercased; partly UNCONFIRMED). */
  readonly name: string
  readonly datatype: Datatype
  readonly namespace: Namespace
}

/**
 * The last second's text is kept and given again: a contact keeps two of these (created,
 * subscribed), and a backfill makes thousands a second, so they share one string (about 80 B a contact).
 */
let lastSecond = NaN
let lastIso = ""
export const isoSeconds = (ms: number): string => {
  const second = Math.floor(ms / 1000)
  if (second !== lastSecond) {
    lastSecond = second
    lastIso = new Date(second * 1000).toISOString().replace(/\.\d{3}Z$/, "Z")
  }
  return lastIso
}

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
    lists.set(l.id, { id: l.id, name: l.name, address: listAddress(l.id), createdAt: startedAt, subscribers: 0, deleted: false })
  }
  const addList = (name: string, now: number): ListRow => {
    let id = 1
    for (const l of lists.keys()) id = Math.max(id, l + 1)
    const row: ListRow = { id, name, address: listAddress(id), createdAt: isoSeconds(now), subscribers: 0, deleted: false }
    lists.set(id, row)
    return row
  }

  const metadataById = new Map<number, MetadataRow>()
  // Unique per namespace: the live `GET /v3/REST/metadata` describes ContactMetaData's key as
  // Namespace|Name, so a static and a historic property may share a name.
  const metadataByKey = new Map<string, MetadataRow>()
  const metadataKey = (namespace: Namespace, name: string) => `${namespace}|${name.toLowerCase()}`
  let nextMetadataId = 1
  const defineMetadata = (name: string, datatype: Datatype, namespace: Namespace): MetadataRow => {
    const row: MetadataRow = { id: nextMetadataId++, name: name.toLowerCase(), datatype, namespace }
    metadataById.set(row.id, row)
    metadataByKey.set(metadataKey(namespace, name), row)
    return row
  }
  const metadata = (namespace: Namespace, name: string) => metadataByKey.get(metadataKey(namespace, name))
  for (const p of options.properties) {
    if (metadata("static", p.name) === undefined) defineMetadata(p.name, p.datatype, "static")
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
      properties: new Map(),
      lists: new Map()
    }
    contactsByEmail.set(email, contact)
    contactsById.set(contact.id, contact)
    return contact
  }

  let nextRecipientId = 1
  const recipientsById = new Map<number, RecipientRow>()
  const setMembership = (c: ContactRow, list: ListRow, next: Membership | undefined, now: number): void => {
    const row = c.lists.get(list.id)
    const previous = row?.status
    if (previous === next) return
    if (previous === "subscribed") list.subscribers--
    if (next === "subscribed") list.subscribers++
    if (next === undefined) {
      c.lists.delete(list.id)
      if (row !== undefined) recipientsById.delete(row.id)
      return
    }
    const stamp = isoSeconds(now)
    const target = row ??
      { id: nextRecipientId++, contactId: c.id, listId: list.id, status: next, subscribedAt: "", unsubscribedAt: "" }
    target.status = next
    if (next === "subscribed") target.subscribedAt = stamp
    else target.unsubscribedAt = stamp
    if (row === undefined) {
      c.lists.set(list.id, target)
      recipientsById.set(target.id, target)
    }
  }

  const snapshot = (c: ContactRow): SimulatedContact => ({
    id: c.id,
    email: c.email,
    name: c.name,
    properties: Object.fromEntries(c.properties),
    lists: new Map(Array.from(c.lists, ([id, r]) => [id, r.status]))
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
    metadata,
    defineMetadata,
    contactByEmail: (email: string) => contactsByEmail.get(email.toLowerCase()),
    contactById: (id: number) => contactsById.get(id),
    allContacts: () => [...contactsById.values()],
    addContact,
    /** An erasure (Erase.ts): `next` takes the contact's ID, and its old address finds nothing. */
    replaceContact: (c: ContactRow, next: ContactRow): void => {
      contactsByEmail.delete(c.email)
      contactsById.set(c.id, next)
    },
    setMembership,
    recipientById: (id: number) => recipientsById.get(id),
    allRecipients: () => [...recipientsById.values()],
    snapshot,
    record,
    recording: options.recordRequests,
    requests: (): ReadonlyArray<RecordedRequest> =>
      records.length < recordLimit ? records.slice() : [...records.slice(recordHead), ...records.slice(0, recordHead)],
    /** Clears contacts (ContactIDs restart at 1) and the log; keeps lists (undeleted) and properties. */
    reset: (): void => {
      contactsByEmail = new Map()
      contactsById = new Map()
      nextContactId = 1
      recipientsById.clear()
      nextRecipientId = 1
      for (const l of lists.values()) {
        l.subscribers = 0
        l.deleted = false
      }
      records = []
      recordHead = 0
    }
  }
}

export type State = ReturnType<typeof makeState>
