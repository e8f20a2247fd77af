/**
 * GDPR erasure, `DELETE /v4/contacts/{contact_ID}`, as recorded: 200 with an empty body, also for
 * an ID that does not exist (gem cassettes `Mailjet_ContactPii/_delete`, 2023). The contact is
 * anonymised at once and keeps its ID: its email becomes a hash at `@domain.invalid`, its name
 * `Anonymized`; it leaves its lists (a list's SubscriberCount went 1 → 0, Grouparoo's fixtures), and
 * `GET /v3/REST/contact/{email}` answers 404 from then on. The address may be uploaded again: a new
 * contact. The purge 30 days later is not simulated.
 */
import { createHash } from "node:crypto"
import { METHOD_NOT_ALLOWED, type Outcome, reply } from "./Replies.js"
import type { State } from "./State.js"

/** Recorded: `Content-Length: 0`. */
const ERASED = reply(200, "")

/** The anonymised address: a hash of the old one, so two erased contacts never share an address. */
export const anonymisedEmail = (id: number, email: string): string =>
  `${createHash("sha256").update(`${id}:${email}`).digest("hex").slice(0, 32)}@domain.invalid`

/** `/v4/contacts/{id}`; `id` as in the path. */
export const eraseRoute = (state: State) => (method: string, id: string, now: number): Outcome => {
  if (method !== "DELETE") return METHOD_NOT_ALLOWED
  const c = /^\d+$/.test(id) ? state.contactById(Number(id)) : undefined
  if (c === undefined || c.email.endsWith("@domain.invalid")) return ERASED
  for (const listId of [...c.lists.keys()]) {
    const list = state.lists.get(listId)
    if (list !== undefined) state.setMembership(c, list, undefined, now)
  }
  state.replaceContact(c, {
    id: c.id,
    email: anonymisedEmail(c.id, c.email),
    name: "Anonymized",
    createdAt: c.createdAt,
    properties: new Map(),
    lists: new Map()
  })
  return ERASED
}
