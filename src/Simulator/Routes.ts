/**
 * The REST resources the simulator serves, each a function from an authenticated request to a
 * reply, reading and changing `State`. Shapes come from `Replies.ts`, checks from `Validation.ts`;
 * a contact's write (managecontact, and each contact of a bulk job) is in `ManageContact.ts`.
 */
import {
  envelope,
  error,
  METHOD_NOT_ALLOWED,
  NO_CONTENT,
  NOT_FOUND,
  type Outcome,
  renderContact,
  renderContactData,
  renderContactsList,
  renderList,
  renderMetadata,
  renderRecipient,
  unknownResource
} from "./Replies.js"
import type { Faults } from "./Faults.js"
import { makeJobs } from "./Jobs.js"
import { makeManageContact } from "./ManageContact.js"
import type { ContactRow, ListRow, RecipientRow, State } from "./State.js"
import {
  type Body,
  DATATYPES,
  page,
  parseObject,
  type Query,
  readFields,
  truthy
} from "./Validation.js"

const isId = (s: string): boolean => /^\d+$/.test(s)

export const makeRoutes = (state: State, faults: Faults) => {
  const manageContact = makeManageContact(state)

  const createMetadata = (body: Body): Outcome => {
    const parsed = parseObject(body)
    if (!parsed.ok) return parsed.outcome
    const read = readFields(parsed.value, "TContactMetaData", ["Datatype", "Name", "NameSpace"])
    if (!read.ok) return read.outcome
    const { Datatype: datatype, Name: name, NameSpace: namespace } = read.fields
    if (typeof name !== "string" || name.trim() === "") {
      return error(400, "Object properties invalid", "MJ08 Property Name is invalid: MJ04 Value must have at least length 1")
    }
    const dt = typeof datatype === "string" ? datatype.toLowerCase() : ""
    const known = DATATYPES.find((d) => d === dt)
    if (known === undefined) {
      return error(
        400,
        "Object properties invalid",
        `MJ08 Property Datatype is invalid: "${typeof datatype === "string" ? datatype : ""}" is not one of ${DATATYPES.join(", ")}`
      )
    }
    const ns = namespace === undefined || namespace === null ? "static" : typeof namespace === "string" ? namespace.toLowerCase() : ""
    if (ns !== "static" && ns !== "historic") {
      return error(400, "Object properties invalid", "MJ08 Property NameSpace is invalid: must be static or historic")
    }
    if (state.metadata(ns, name) !== undefined) {
      // Unique per Namespace|Name; the reply by analogy with the contact duplicate (UNCONFIRMED).
      return error(400, `MJ18 A ContactMetadata resource with value "${name}" for Name already exists.`)
    }
    return envelope(201, [renderMetadata(state.defineMetadata(name, known, ns))])
  }

  const createList = (body: Body, now: number): Outcome => {
    const parsed = parseObject(body)
    if (!parsed.ok) return parsed.outcome
    const read = readFields(parsed.value, "TContactsList", ["Name", "IsDeleted", "Address"])
    if (!read.ok) return read.outcome
    const name = read.fields.Name
    if (typeof name !== "string" || name === "") {
      // mailjet-apiv3-php#38.
      return error(400, "Object properties invalid", "MJ08 Property Name is invalid: MJ04 Value must have at least length 1")
    }
    for (const l of state.lists.values()) {
      if (l.name === name) return error(400, `MJ18 A ContactsList resource with value "${name}" for Name already exists.`)
    }
    return envelope(201, [renderList(state.addList(name, now))])
  }

  const findContact = (idOrEmail: string): Outcome => {
    if (isId(idOrEmail)) {
      const c = state.contactById(Number(idOrEmail))
      return c === undefined ? NOT_FOUND : envelope(200, [renderContact(c)])
    }
    if (!idOrEmail.includes("@")) {
      // Live wording (JAVA-IT).
      return error(400, `Invalid email address "${idOrEmail}", reason: "No @ character in mail"`)
    }
    const c = state.contactByEmail(idOrEmail)
    return c === undefined ? NOT_FOUND : envelope(200, [renderContact(c)])
  }

  const contactOf = (idOrEmail: string): ContactRow | undefined =>
    isId(idOrEmail) ? state.contactById(Number(idOrEmail)) : state.contactByEmail(idOrEmail)

  const listName = (id: number): string => state.lists.get(id)?.name ?? ""

  /** Filters named in node-mailjet's `GetContactListQueryParams`; an unknown filter is ignored (VCR). */
  const listsMatching = (query: Query): Array<ListRow> => {
    const name = query.get("name")
    const address = query.get("address")
    const deleted = query.get("isdeleted")
    const exclude = query.get("excludeid")
    return [...state.lists.values()].filter((l) =>
      (name === undefined || l.name === name) &&
      (address === undefined || l.address === address) &&
      (deleted === undefined || l.deleted === truthy(deleted)) &&
      (exclude === undefined || String(l.id) !== exclude)
    )
  }

  /** `ContactsList`, `Contact`, `ContactEmail` and `Unsub` filters (node-mailjet's ListRecipient query types). */
  const recipientsMatching = (query: Query): Array<RecipientRow> => {
    const list = query.get("contactslist")
    const contact = query.get("contact")
    const email = query.get("contactemail")
    const unsub = query.get("unsub")
    const byEmail = email === undefined ? undefined : state.contactByEmail(email)
    if (email !== undefined && byEmail === undefined) return []
    return state.allRecipients().filter((r) =>
      (list === undefined || String(r.listId) === list) &&
      (contact === undefined || String(r.contactId) === contact) &&
      (byEmail === undefined || r.contactId === byEmail.id) &&
      (unsub === undefined || (r.status === "unsubscribed") === truthy(unsub))
    )
  }

  const contactsMatching = (query: Query): Array<ContactRow> => {
    const list = query.get("contactslist")
    const all = state.allContacts()
    return list === undefined ? all : all.filter((c) => c.lists.has(Number(list)))
  }

  const renderRecipientRow = (r: RecipientRow) => renderRecipient(r, listName(r.listId))

  const jobs = makeJobs(state, manageContact, faults)

  /** `segments` start after `/v3/REST`. */
  const route = (method: string, segments: ReadonlyArray<string>, query: Query, body: Body, now: number): Outcome => {
    const resource = segments[0] ?? ""
    const id = segments[1]
    const action = segments[2]
    const get = method === "GET" || method === "HEAD"
    switch (resource.toLowerCase()) {
      case "contactslist": {
        if (id === undefined) {
          if (get) return page(listsMatching(query), query, renderList)
          return method === "POST" ? createList(body, now) : METHOD_NOT_ALLOWED
        }
        const list = isId(id) ? state.lists.get(Number(id)) : undefined
        if (action?.toLowerCase() === "managemanycontacts" && segments.length <= 4) {
          if (segments[3] !== undefined) return get ? jobs.get(segments[3], now) : METHOD_NOT_ALLOWED
          if (method !== "POST") return METHOD_NOT_ALLOWED
          return list === undefined || list.deleted ? NOT_FOUND : jobs.postToList(list, body, now)
        }
        if (segments.length > 3) return unknownResource(segments.slice(2).join("/"))
        if (action === undefined) {
          if (method === "DELETE") {
            if (list === undefined) return NOT_FOUND
            list.deleted = true
            return NO_CONTENT
          }
          if (!get) return METHOD_NOT_ALLOWED
          return list === undefined ? NOT_FOUND : envelope(200, [renderList(list)])
        }
        if (action.toLowerCase() !== "managecontact") return unknownResource(action)
        if (method !== "POST") return METHOD_NOT_ALLOWED
        // A deleted list takes no contacts: 404, as reported for a list its owner thought existed
        // (mailjet-apiv3-nodejs#245). What Mailjet answers here is UNCONFIRMED.
        return list === undefined || list.deleted ? NOT_FOUND : manageContact(list, body, now)
      }
      case "contactmetadata": {
        if (id === undefined) {
          if (get) return page([...state.metadataById.values()], query, renderMetadata)
          return method === "POST" ? createMetadata(body) : METHOD_NOT_ALLOWED
        }
        if (action !== undefined) return unknownResource(segments.slice(2).join("/"))
        if (!get) return METHOD_NOT_ALLOWED
        // By ID, or by name as a convenience (the static one first).
        const m = isId(id) ? state.metadataById.get(Number(id)) : state.metadata("static", id) ?? state.metadata("historic", id)
        return m === undefined ? NOT_FOUND : envelope(200, [renderMetadata(m)])
      }
      case "contact": {
        if (id?.toLowerCase() === "managemanycontacts" && segments.length <= 3) {
          if (action !== undefined) return get ? jobs.get(action, now) : METHOD_NOT_ALLOWED
          return method === "POST" ? jobs.postToContacts(body, now) : METHOD_NOT_ALLOWED
        }
        if (action !== undefined) {
          if (action.toLowerCase() !== "getcontactslists" || segments.length > 3) {
            return unknownResource(segments.slice(2).join("/"))
          }
          if (!get) return METHOD_NOT_ALLOWED
          const c = contactOf(id!)
          return c === undefined ? NOT_FOUND : envelope(200, Array.from(c.lists.values(), renderContactsList))
        }
        if (!get) return METHOD_NOT_ALLOWED
        if (id === undefined) return page(contactsMatching(query), query, renderContact)
        return findContact(id)
      }
      case "contactdata": {
        if (action !== undefined) return unknownResource(segments.slice(2).join("/"))
        if (!get) return METHOD_NOT_ALLOWED
        if (id === undefined) return page(state.allContacts(), query, renderContactData)
        const c = contactOf(id)
        return c === undefined ? NOT_FOUND : envelope(200, [renderContactData(c)])
      }
      case "listrecipient": {
        if (action !== undefined) return unknownResource(segments.slice(2).join("/"))
        if (id === undefined) return get ? page(recipientsMatching(query), query, renderRecipientRow) : METHOD_NOT_ALLOWED
        const r = isId(id) ? state.recipientById(Number(id)) : undefined
        if (method === "DELETE") {
          // Takes the contact out of the list, like managecontact's `remove`.
          if (r === undefined) return NOT_FOUND
          const c = state.contactById(r.contactId)
          const l = state.lists.get(r.listId)
          if (c !== undefined && l !== undefined) state.setMembership(c, l, undefined, now)
          return NO_CONTENT
        }
        if (!get) return METHOD_NOT_ALLOWED
        return r === undefined ? NOT_FOUND : envelope(200, [renderRecipientRow(r)])
      }
      default:
        return unknownResource(resource)
    }
  }
  /** `DATA` module reads (a bulk job's error file), and the lazy advance of bulk jobs. */
  return Object.assign(route, { data: jobs.errorFile, advance: jobs.advance, resetJobs: jobs.reset })
}
