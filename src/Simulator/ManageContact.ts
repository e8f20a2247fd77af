/**
 * A contact's write, `POST /contactslist/{id}/managecontact`, and each contact of a bulk job
 * (Jobs.ts): the checks Mailjet makes on the body, then each action's rule for the list's membership.
 */
import { envelope, error, type Outcome, renderManaged } from "./Replies.js"
import type { ListRow, State } from "./State.js"
import { type Body, emailProblem, fitsDatatype, isJsonObject, type Json, parseObject, readFields } from "./Validation.js"

const ACTIONS = new Set(["addforce", "addnoforce", "unsub", "remove"])

/** Without a list (a bulk job with no ContactsLists), only the contact itself is updated. */
export const makeManageContact = (state: State) => (list: ListRow | undefined, body: Body, now: number): Outcome => {
  const parsed = parseObject(body)
  if (!parsed.ok) return parsed.outcome
  const read = readFields(parsed.value, "TContactslistManageContact", ["Email", "Name", "Action", "Properties"])
  if (!read.ok) return read.outcome
  const { Action, Email, Name, Properties } = read.fields

  // Wrong JSON types are a deserialisation error in Mailjet's stack; exact text UNCONFIRMED.
  for (const [field, value] of [["Email", Email], ["Name", Name], ["Action", Action]] as const) {
    if (value !== undefined && value !== null && typeof value !== "string") {
      return error(400, `Invalid json input: expected a string for property "${field}"`)
    }
  }

  // Field errors as in the live reply to an empty body (mailjet-gem#48).
  const info: Record<string, unknown> = {}
  // Not trimmed: stray whitespace is a client bug worth surfacing (rejected as an invalid character).
  const email = typeof Email === "string" ? Email : ""
  if (email === "") info.Email = "MJ08 Property email is invalid: MJ03 A non-empty value is required"
  else {
    const problem = emailProblem(email)
    if (problem !== undefined) info.Email = `MJ08 Property email is invalid: ${problem}`
  }
  const action = typeof Action === "string" ? Action : ""
  // Enum values are matched case-insensitively (UNCONFIRMED).
  const actionKey = action.toLowerCase()
  if (!ACTIONS.has(actionKey)) info.Action = `Invalid action: ${action}`

  const updates: Array<readonly [string, Json]> = []
  if (Properties !== undefined && Properties !== null) {
    if (!isJsonObject(Properties)) {
      // A stringified object is silently ignored by Mailjet (mailjet-apiv3-nodejs#267); reject it rather than ignore it.
      info.Properties = "MJ08 Property Properties is invalid: a JSON object is required"
    } else {
      // Shape from Mailjet's guide `_newsletter.md` (a docs example, not a live capture).
      const problems: Array<Record<string, string>> = []
      for (const key of Object.keys(Properties)) {
        const value = Properties[key]!
        // Only static properties can be set through managecontact (Mailjet's guide).
        const meta = state.metadata("static", key)
        if (meta === undefined) problems.push({ [key]: "Property not defined" })
        else if (value !== null && !fitsDatatype(meta.datatype, value)) {
          problems.push({ [key]: "Property type does not match definition" })
        } else updates.push([meta.name, value])
      }
      if (problems.length > 0) info.Properties = problems
    }
  }
  if (Object.keys(info).length > 0) return error(400, "Object properties invalid", info)

  const key = email.toLowerCase()
  const contact = state.contactByEmail(key) ?? state.addContact(key, now)
  if (typeof Name === "string") contact.name = Name
  for (const [name, value] of updates) {
    // null clears a property (stated for managemanycontacts; for managecontact UNCONFIRMED).
    if (value === null) contact.properties.delete(name)
    else contact.properties.set(name, value)
  }

  if (list === undefined) return envelope(201, [renderManaged(contact, action)])
  const current = contact.lists.get(list.id)
  switch (actionKey) {
    case "addforce":
      state.setMembership(contact, list, "subscribed", now)
      break
    case "addnoforce":
      if (current === undefined) state.setMembership(contact, list, "subscribed", now)
      break
    case "unsub":
      // UNCONFIRMED: for a contact not in the list we add it as unsubscribed, so that a
      // later addnoforce cannot subscribe someone who withdrew consent. Mailjet may answer 400.
      state.setMembership(contact, list, "unsubscribed", now)
      break
    case "remove":
      // Recorded: `remove` for an existing contact outside the list answers 201 (grouparoo's
      // mailjet plugin fixtures, 2021); for an address with no contact at all, UNCONFIRMED.
      state.setMembership(contact, list, undefined, now)
      break
  }
  // 201 in all 27 recorded managecontact replies (grouparoo's mailjet plugin fixtures, 2021).
  return envelope(201, [renderManaged(contact, action)])
}
