/**
 * What the simulator answers: the reply type, Mailjet's envelopes and error bodies, and the
 * fixed replies of its front proxy. Every recorded shape lives here once, with its source.
 *
 * Sources, cited by short name: VCR = mailjet/mailjet-gem `spec/cassettes/` (live recordings,
 * 2020–2023); JAVA-IT = mailjet/mailjet-apiv3-java `MailjetExceptionIT.java` (live assert);
 * GitHub issues as `repo#N`. UNCONFIRMED marks a guess no recording settles.
 */
import type { ContactRow, ListRow, MetadataRow, RecipientRow } from "./State.js"

export type Outcome =
  | {
    readonly _tag: "Reply"
    readonly status: number
    /** HTTP reason phrase; Mailjet sends its ErrorMessage here (VCR: `404 Object not found`). */
    readonly reason: string
    readonly contentType: string
    readonly body: string
    readonly headers?: Readonly<Record<string, string>>
  }
  | { readonly _tag: "Reset" }

export type ReplyOutcome = Extract<Outcome, { readonly _tag: "Reply" }>

// Mailjet's 429 comes from its front proxy as HTML (mailjet-apiv3-nodejs#178). Only the first
// line was captured; the rest is HAProxy's stock 429 page, which that line matches (UNCONFIRMED).
export const TOO_MANY_REQUESTS_BODY =
  "<html><body><h1>429 Too Many Requests</h1>\nYou have sent too many requests in a given amount of time.\n</body></html>\n"

// Outside /v3 (e.g. `/v3.1/REST/...`) the front proxy answers with nginx's page, 162 bytes
// (VCR `API_responds_with_non_JSON_content_type/raises_an_error.yml`).
const NGINX_404_BODY =
  "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body bgcolor=\"white\">\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

/** Latin-1 printable only: Node throws on other characters in a reason phrase. */
const safeReason = (text: string): string => {
  const cleaned = text.replace(/[^\x20-\x7e]/g, "?")
  return cleaned.length > 200 ? cleaned.slice(0, 200) : cleaned
}

const REASONS: Readonly<Record<number, string>> = {
  200: "OK",
  201: "Created",
  401: "Unauthorized",
  404: "Not Found",
  429: "Too Many Requests",
  503: "Service Unavailable"
}

export const reply = (status: number, body: string, contentType = "application/json", reason?: string): Outcome => ({
  _tag: "Reply",
  status,
  reason: reason ?? REASONS[status] ?? "",
  contentType,
  body
})

/** `{"Count": n, "Data": [...], "Total": n}`: every success (VCR). */
export const envelope = (status: number, data: ReadonlyArray<unknown>, total = data.length): Outcome =>
  reply(status, JSON.stringify({ Count: data.length, Data: data, Total: total }))

/** v3 REST error envelope, reason phrase = ErrorMessage (VCR; mailjet-apiv3-php#139). */
export const error = (status: number, message: string, info: unknown = ""): Outcome =>
  reply(
    status,
    JSON.stringify({ ErrorInfo: info, ErrorMessage: message, StatusCode: status }),
    "application/json",
    safeReason(message)
  )

/** VCR `Mailjet_Contact/_find/returns_nil_when_contact_not_found.yml`. */
export const NOT_FOUND = error(404, "Object not found")
/** mailjet-apiv3-java#48. */
export const METHOD_NOT_ALLOWED = error(405, "Method not allowed")
export const RESET: Outcome = { _tag: "Reset" }
export const NGINX_404 = reply(404, NGINX_404_BODY, "text/html", "Not Found")

/** VCR `Mailjet_Resource/invalid_credentials` (2023): empty text/html body and a Basic challenge. */
export const UNAUTHORIZED: Outcome = {
  _tag: "Reply",
  status: 401,
  reason: "Unauthorized",
  contentType: "text/html",
  body: "",
  headers: { "www-authenticate": "Basic realm=\"Provide an apiKey and secretKey\"" }
}

export const TOO_MANY: Outcome = {
  _tag: "Reply",
  status: 429,
  reason: "Too Many Requests",
  contentType: "text/html",
  body: TOO_MANY_REQUESTS_BODY,
  headers: { "cache-control": "no-cache" }
}

/** mailjet-apiv3-php#123: a 500 carries an `ErrorIdentifier` GUID, which Mailjet support asks for. */
export const internalError = (errorIdentifier: string): Outcome =>
  reply(
    500,
    JSON.stringify({
      ErrorIdentifier: errorIdentifier,
      ErrorInfo: "",
      ErrorMessage: "An Unexpected Error occurred during API request",
      StatusCode: 500
    }),
    "application/json",
    "An Unexpected Error occurred during API request"
  )

/** VCR `the_resource_path_does_not_exist`: an unknown module under /v3. */
export const unknownModule = (module: string): Outcome =>
  reply(
    500,
    JSON.stringify({
      ErrorInfo: "EFPWebError",
      ErrorMessage: `Could not determine HTTP module for request "${module}"`,
      StatusCode: 500
    }),
    "application/json",
    "Internal error"
  )

// No capture of a Mailjet 503 exists; the v3 error envelope is the best guess.
export const UNAVAILABLE = error(503, "Service Unavailable")

/** Mailjet's old getting-started guide: `/v3/REST/contacts` → 400 `Unknown resource: "contacts"`. */
export const unknownResource = (name: string): Outcome => error(400, `Unknown resource: "${name}"`)

/** mailjet-apiv3-php#244 (`TContact`), mailjet-apiv3-java#47 (`TListRecipient`). */
export const unknownField = (type: string, field: string): Outcome =>
  error(400, `Invalid json input: object ""->"${type}" has no property "${field}"`)

// --- resource shapes -------------------------------------------------------------------------

/** VCR `creates_new_contact_lists.yml`, `deletes_list_fields.yml` (a deleted list reads `IsDeleted: true`). */
export const renderList = (l: ListRow) => ({
  Address: l.address,
  CreatedAt: l.createdAt,
  ID: l.id,
  IsDeleted: l.deleted,
  Name: l.name,
  SubscriberCount: l.subscribers
})

/** VCR `Mailjet_Contactmetadata/*`. */
export const renderMetadata = (m: MetadataRow) => ({ Datatype: m.datatype, ID: m.id, Name: m.name, NameSpace: m.namespace })

/**
 * VCR `Mailjet_Contact/_find/*`. `LastUpdateAt` stays "" after managecontact (grouparoo's mailjet
 * plugin fixtures `export-record.js`, 2021): only edits of the contact itself set it.
 */
export const renderContact = (c: ContactRow) => ({
  CreatedAt: c.createdAt,
  DeliveredCount: 0,
  Email: c.email,
  ExclusionFromCampaignsUpdatedAt: "",
  ID: c.id,
  IsExcludedFromCampaigns: false,
  IsOptInPending: false,
  IsSpamComplaining: false,
  LastActivityAt: "",
  LastUpdateAt: "",
  Name: c.name,
  UnsubscribedAt: "",
  UnsubscribedBy: ""
})

/**
 * The managecontact reply (Mailjet's guide `_newsletter.md`). It echoes all stored properties,
 * not only those sent, and `Name: ""` when there is none (grouparoo's mailjet plugin fixtures).
 */
export const renderManaged = (c: ContactRow, action: string) => ({
  ContactID: c.id,
  Email: c.email,
  Action: action,
  Name: c.name,
  Properties: Object.fromEntries(c.properties)
})

/** VCR `Mailjet_Resource/listrecipient/should_not_be_nil.yml` (2021). */
export const renderRecipient = (r: RecipientRow, listName: string) => ({
  ContactID: r.contactId,
  ID: r.id,
  IsActive: true,
  IsUnsubscribed: r.status === "unsubscribed",
  ListID: r.listId,
  ListName: listName,
  SubscribedAt: r.subscribedAt,
  UnsubscribedAt: r.unsubscribedAt
})

/**
 * VCR `Mailjet_Resource/contactdata/should_not_be_nil.yml` (2021): `Data` is a Name/Value list.
 * Every recorded Value is a string; other datatypes rendered as text is UNCONFIRMED.
 */
export const renderContactData = (c: ContactRow) => ({
  ContactID: c.id,
  Data: Array.from(c.properties, ([Name, value]) => ({ Name, Value: typeof value === "string" ? value : String(value) })),
  ID: c.id,
  MethodCollection: ""
})

/** VCR `Mailjet_Contact_getcontactslists/_find/returns_collection_when_there_is_only_one_record.yml`. */
export const renderContactsList = (r: RecipientRow) => ({
  IsActive: true,
  IsUnsub: r.status === "unsubscribed",
  ListID: r.listId,
  SubscribedAt: r.subscribedAt
})

/** VCR `deletes_list_fields.yml`: `204 No content`, an empty body typed application/json. */
export const NO_CONTENT: Outcome = reply(204, "", "application/json", "No content")
