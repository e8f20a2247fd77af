/**
 * The simulator's state and request handling as plain synchronous code: no Effect, no socket.
 * `src/Simulator.ts` wraps it in an HttpApp. Keeping it synchronous makes every request atomic
 * (no interleaving between validation and mutation) and keeps per-request work small.
 *
 * Facts and their sources: /work/shared/docs/mailjet-api.md (section numbers below refer to it).
 */

export type Datatype = "str" | "int" | "float" | "bool" | "datetime"

export interface SimulatorFaults {
  /** Added to every reply (after the request has been applied). */
  readonly latencyMs?: number | undefined
  /** Requests per second allowed (sliding one-second window); beyond it 429 with Mailjet's HTML body. */
  readonly maxRps?: number | undefined
  /** Share 0..1 of requests answered 500 (JSON with ErrorIdentifier) or 503. */
  readonly errorRate?: number | undefined
  /** Share 0..1 of requests whose connection is reset without a reply. */
  readonly resetRate?: number | undefined
  /** Every request answered 503 while true. */
  readonly outage?: boolean | undefined
}

export interface SimulatorOptions {
  readonly apiKey: string
  readonly secretKey: string
  /** Default `[{ id: 1, name: "Signal" }]`. */
  readonly lists?: ReadonlyArray<{ readonly id: number; readonly name: string }> | undefined
  /** Pre-defined contact properties (contactmetadata, NameSpace "static"). Default none. */
  readonly properties?: ReadonlyArray<{ readonly name: string; readonly datatype: Datatype }> | undefined
  readonly faults?: SimulatorFaults | undefined
  /** Seed for the fault draws, so tests are reproducible. Default: random. */
  readonly seed?: number | undefined
  /** How many recorded requests are kept (oldest dropped first). Default 100,000. */
  readonly recordLimit?: number | undefined
  /**
   * Default true. False keeps no request log (`requests` stays empty): for benchmarks, where the
   * client is what is measured and the log would only cost memory and time.
   */
  readonly recordRequests?: boolean | undefined
}

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

export interface Incoming {
  readonly method: string
  readonly url: string
  readonly authorization: string | undefined
  readonly body: string | undefined
  readonly now: number
}

export type Outcome =
  | {
    readonly _tag: "Reply"
    readonly status: number
    /** HTTP reason phrase; Mailjet sends its ErrorMessage here (§0). */
    readonly reason: string
    readonly contentType: string
    readonly body: string
    readonly headers?: Readonly<Record<string, string>>
  }
  | { readonly _tag: "Reset" }

// ---------------------------------------------------------------------------------------------
// Internal state

interface ContactRow {
  readonly id: number
  readonly email: string
  name: string
  readonly createdAt: string
  lastUpdateAt: string
  readonly properties: Map<string, unknown>
  readonly lists: Map<number, Membership>
}

interface ListRow {
  readonly id: number
  readonly name: string
  readonly address: string
  readonly createdAt: string
  subscribers: number
}

interface MetadataRow {
  readonly id: number
  /** Stored lowercase (§5: names come back lowercased; partly UNCONFIRMED). */
  readonly name: string
  readonly datatype: Datatype
  readonly namespace: "static" | "historic"
}

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }
type JsonObject = { readonly [key: string]: Json }

const DATATYPES: ReadonlyArray<Datatype> = ["str", "int", "float", "bool", "datetime"]
const ACTIONS = new Set(["addforce", "addnoforce", "unsub", "remove"])
const DEFAULT_LISTS = [{ id: 1, name: "Signal" }] as const
const DEFAULT_RECORD_LIMIT = 100_000

// Mailjet's 429 comes from its front proxy as HTML (§2, mailjet-apiv3-nodejs#178). Only the first
// line was captured; the rest is HAProxy's stock 429 page, which that line matches (UNCONFIRMED).
export const TOO_MANY_REQUESTS_BODY =
  "<html><body><h1>429 Too Many Requests</h1>\nYou have sent too many requests in a given amount of time.\n</body></html>\n"

const NGINX_404_BODY =
  "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z")

/** mulberry32: tiny, fast, good enough for fault draws. */
const makePrng = (seed: number): () => number => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const isJsonObject = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)

// RFC 3339 date-time; the offset is optional because Mailjet's own example omits it (§5).
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$/

const fitsDatatype = (datatype: Datatype, value: Json): boolean => {
  switch (datatype) {
    case "str":
      return typeof value === "string"
    case "int":
      return typeof value === "number" && Number.isSafeInteger(value)
    case "float":
      return typeof value === "number" && Number.isFinite(value)
    case "bool":
      return typeof value === "boolean"
    case "datetime":
      if (typeof value === "number") return Number.isSafeInteger(value)
      return typeof value === "string" && RFC3339.test(value) && !Number.isNaN(Date.parse(value.replace(/[Tt ]/, "T")))
  }
}

/**
 * Why an address is rejected, or undefined when it is acceptable. Mailjet's exact rules are
 * UNCONFIRMED; the "No @ character in mail" wording is from a live reply (§2, JAVA-IT).
 */
export const emailProblem = (email: string): string | undefined => {
  const at = email.lastIndexOf("@")
  if (at === -1) return "No @ character in mail"
  if (/[\s"(),:;<>[\\\]]/.test(email)) return "Invalid character in mail"
  if (email.indexOf("@") !== at) return "More than one @ character in mail"
  const local = email.slice(0, at)
  const domain = email.slice(at + 1)
  if (local.length === 0) return "Empty local part in mail"
  if (domain.length === 0) return "Empty domain in mail"
  if (local.startsWith(".") || local.endsWith(".") || local.includes("..")) return "Invalid local part in mail"
  if (!domain.includes(".") || domain.startsWith(".") || domain.endsWith(".") || domain.includes("..")) {
    return "Invalid domain in mail"
  }
  return undefined
}

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

const reply = (status: number, body: string, contentType = "application/json", reason?: string): Outcome => ({
  _tag: "Reply",
  status,
  reason: reason ?? REASONS[status] ?? "",
  contentType,
  body
})

const envelope = (status: number, data: ReadonlyArray<unknown>, total = data.length): Outcome =>
  reply(status, JSON.stringify({ Count: data.length, Data: data, Total: total }))

const error = (status: number, message: string, info: unknown = ""): Outcome =>
  reply(
    status,
    JSON.stringify({ ErrorInfo: info, ErrorMessage: message, StatusCode: status }),
    "application/json",
    safeReason(message)
  )

const NOT_FOUND = error(404, "Object not found")
const METHOD_NOT_ALLOWED = error(405, "Method not allowed")
const RESET: Outcome = { _tag: "Reset" }

const UNAUTHORIZED: Outcome = {
  _tag: "Reply",
  status: 401,
  reason: "Unauthorized",
  contentType: "text/html",
  body: "",
  headers: { "www-authenticate": "Basic realm=\"Provide an apiKey and secretKey\"" }
}

const TOO_MANY: Outcome = {
  _tag: "Reply",
  status: 429,
  reason: "Too Many Requests",
  contentType: "text/html",
  body: TOO_MANY_REQUESTS_BODY,
  headers: { "cache-control": "no-cache" }
}

const unknownResource = (name: string): Outcome => error(400, `Unknown resource: "${name}"`)

const unknownField = (type: string, field: string): Outcome =>
  error(400, `Invalid json input: object ""->"${type}" has no property "${field}"`)

/** The request body, parsed once per request. */
interface Body {
  readonly raw: string | undefined
  /** Set when `raw` is valid JSON. */
  readonly json: { readonly value: unknown } | undefined
  /** Set when `raw` is not valid JSON: the parser's message. */
  readonly parseError: string | undefined
}

const readBody = (raw: string | undefined): Body => {
  if (raw === undefined || raw.trim() === "") return { raw, json: undefined, parseError: undefined }
  try {
    return { raw, json: { value: JSON.parse(raw) }, parseError: undefined }
  } catch (e) {
    return { raw, json: undefined, parseError: e instanceof Error ? e.message : String(e) }
  }
}

type Parsed = { readonly ok: true; readonly value: JsonObject } | { readonly ok: false; readonly outcome: Outcome }

const parseObject = (body: Body): Parsed => {
  if (body.parseError !== undefined) {
    return { ok: false, outcome: error(400, `Invalid json input: ${body.parseError}`) }
  }
  if (body.json === undefined) {
    // Verbatim from a live reply to an empty body (§2, mailjet-apiv3-java#136).
    return { ok: false, outcome: error(400, "Invalid json input: unexpected end of stream at stream position 0 ...|...") }
  }
  const value = body.json.value
  if (!isJsonObject(value)) {
    return { ok: false, outcome: error(400, "Invalid json input: expected \"{\" at stream position 0") }
  }
  return { ok: true, value }
}

/**
 * Reads body fields by case-insensitive name (§0). Rejects the first unknown field the way the
 * /contact endpoint does (§2, §7); for managecontact that is UNCONFIRMED.
 */
const readFields = <K extends string>(
  body: JsonObject,
  typeName: string,
  known: ReadonlyArray<K>
): { readonly ok: true; readonly fields: Partial<Record<K, Json>> } | { readonly ok: false; readonly outcome: Outcome } => {
  const fields: Partial<Record<K, Json>> = {}
  for (const key of Object.keys(body)) {
    const lower = key.toLowerCase()
    const match = known.find((k) => k.toLowerCase() === lower)
    if (match === undefined) return { ok: false, outcome: unknownField(typeName, key) }
    const value = body[key]
    if (value !== undefined) fields[match] = value
  }
  return { ok: true, fields }
}

interface Query {
  readonly get: (name: string) => string | undefined
}

const parseQuery = (search: string): Query => {
  if (search === "") return { get: () => undefined }
  const params = new Map<string, string>()
  for (const [k, v] of new URLSearchParams(search)) {
    const key = k.toLowerCase()
    // Only the first occurrence of a repeated parameter counts (§9).
    if (!params.has(key)) params.set(key, v)
  }
  return { get: (name) => params.get(name.toLowerCase()) }
}

const truthy = (v: string | undefined): boolean => v !== undefined && (v === "1" || v.toLowerCase() === "true")

/** Limit default 10, max 1000, 0 means the maximum; Offset from 0; countOnly / countRecords (§9). */
const page = <A>(items: ReadonlyArray<A>, query: Query, render: (a: A) => unknown): Outcome => {
  if (truthy(query.get("countonly"))) return reply(200, JSON.stringify({ Count: items.length, Data: [], Total: items.length }))
  const limitRaw = Number.parseInt(query.get("limit") ?? "", 10)
  const limit = Number.isNaN(limitRaw) || limitRaw < 0 ? 10 : limitRaw === 0 ? 1000 : Math.min(limitRaw, 1000)
  const offsetRaw = Number.parseInt(query.get("offset") ?? "", 10)
  const offset = Number.isNaN(offsetRaw) || offsetRaw < 0 ? 0 : offsetRaw
  const data = items.slice(offset, offset + limit).map(render)
  return envelope(200, data, truthy(query.get("countrecords")) ? items.length : data.length)
}

// ---------------------------------------------------------------------------------------------

export interface Core {
  readonly handle: (request: Incoming) => Outcome
  readonly latencyMs: () => number
  readonly contacts: () => ReadonlyArray<SimulatedContact>
  readonly contact: (email: string) => SimulatedContact | undefined
  readonly requests: () => ReadonlyArray<RecordedRequest>
  readonly setFaults: (faults: SimulatorFaults) => void
  readonly reset: () => void
}

export const makeCore = (options: SimulatorOptions): Core => {
  const startedAt = isoSeconds(Date.now())
  const random = makePrng(options.seed ?? Math.floor(Math.random() * 4294967296))
  const expectedAuth = "Basic " + Buffer.from(`${options.apiKey}:${options.secretKey}`, "utf8").toString("base64")

  const lists = new Map<number, ListRow>()
  for (const l of options.lists ?? DEFAULT_LISTS) {
    lists.set(l.id, { id: l.id, name: l.name, address: l.id.toString(36).padStart(9, "x"), createdAt: startedAt, subscribers: 0 })
  }

  const metadataById = new Map<number, MetadataRow>()
  const metadataByName = new Map<string, MetadataRow>()
  let nextMetadataId = 1
  const defineMetadata = (name: string, datatype: Datatype, namespace: "static" | "historic"): MetadataRow => {
    const row: MetadataRow = { id: nextMetadataId++, name: name.toLowerCase(), datatype, namespace }
    metadataById.set(row.id, row)
    metadataByName.set(row.name, row)
    return row
  }
  for (const p of options.properties ?? []) {
    if (!metadataByName.has(p.name.toLowerCase())) defineMetadata(p.name, p.datatype, "static")
  }

  let contactsByEmail = new Map<string, ContactRow>()
  let contactsById = new Map<number, ContactRow>()
  let nextContactId = 1

  // Recorded requests: a ring buffer, so memory stays bounded under a benchmark.
  const recordLimit = Math.max(1, options.recordLimit ?? DEFAULT_RECORD_LIMIT)
  const recording = options.recordRequests ?? true
  let records: Array<RecordedRequest> = []
  let recordHead = 0
  const record = (r: RecordedRequest): void => {
    if (records.length < recordLimit) records.push(r)
    else {
      records[recordHead] = r
      recordHead = (recordHead + 1) % recordLimit
    }
  }

  let faults: SimulatorFaults = options.faults ?? {}
  // Sliding one-second window: a ring of the arrival times of the last `maxRps` admitted requests.
  let window: Array<number> = []
  let windowHead = 0
  const admit = (now: number, maxRps: number): boolean => {
    const capacity = Math.max(0, Math.floor(maxRps))
    if (capacity === 0) return false
    if (window.length > capacity || (window.length < capacity && windowHead !== 0)) {
      // The limit changed: start a fresh window.
      window = []
      windowHead = 0
    }
    if (window.length < capacity) {
      window.push(now)
      return true
    }
    // Rejected requests do not count, so a client that backs off recovers within a second.
    if (window[windowHead]! > now - 1000) return false
    window[windowHead] = now
    windowHead = (windowHead + 1) % capacity
    return true
  }

  const guid = (): string => {
    const hex = (n: number) =>
      Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join("").toUpperCase()
    return `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`
  }
  const internalError = (): Outcome =>
    reply(
      500,
      JSON.stringify({
        ErrorIdentifier: guid(),
        ErrorInfo: "",
        ErrorMessage: "An Unexpected Error occurred during API request",
        StatusCode: 500
      }),
      "application/json",
      "An Unexpected Error occurred during API request"
    )
  // No capture of a Mailjet 503 exists; the v3 error envelope is the best guess.
  const unavailable = error(503, "Service Unavailable")

  const isAuthorized = (header: string | undefined): boolean => {
    if (header === undefined) return false
    if (header === expectedAuth) return true
    const space = header.indexOf(" ")
    if (space === -1 || header.slice(0, space).toLowerCase() !== "basic") return false
    const decoded = Buffer.from(header.slice(space + 1).trim(), "base64").toString("utf8")
    const colon = decoded.indexOf(":")
    return colon !== -1 && decoded.slice(0, colon) === options.apiKey && decoded.slice(colon + 1) === options.secretKey
  }

  // --- rendering ---

  const renderList = (l: ListRow) => ({
    Address: l.address,
    CreatedAt: l.createdAt,
    ID: l.id,
    IsDeleted: false,
    Name: l.name,
    SubscriberCount: l.subscribers
  })
  const renderMetadata = (m: MetadataRow) => ({ Datatype: m.datatype, ID: m.id, Name: m.name, NameSpace: m.namespace })
  const renderContact = (c: ContactRow) => ({
    CreatedAt: c.createdAt,
    DeliveredCount: 0,
    Email: c.email,
    ExclusionFromCampaignsUpdatedAt: "",
    ID: c.id,
    IsExcludedFromCampaigns: false,
    IsOptInPending: false,
    IsSpamComplaining: false,
    LastActivityAt: "",
    LastUpdateAt: c.lastUpdateAt,
    Name: c.name,
    UnsubscribedAt: "",
    UnsubscribedBy: ""
  })
  const propertiesObject = (c: ContactRow): Record<string, unknown> => Object.fromEntries(c.properties)
  const snapshot = (c: ContactRow): SimulatedContact => ({
    id: c.id,
    email: c.email,
    name: c.name,
    properties: propertiesObject(c),
    lists: new Map(c.lists)
  })

  const setMembership = (c: ContactRow, list: ListRow, next: Membership | undefined): void => {
    const previous = c.lists.get(list.id)
    if (previous === next) return
    if (previous === "subscribed") list.subscribers--
    if (next === "subscribed") list.subscribers++
    if (next === undefined) c.lists.delete(list.id)
    else c.lists.set(list.id, next)
  }

  // --- endpoints ---

  const manageContact = (list: ListRow, body: Body, now: number): Outcome => {
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

    const info: Record<string, unknown> = {}
    // Not trimmed: stray whitespace is a client bug worth surfacing (rejected as an invalid character).
    const email = typeof Email === "string" ? Email : ""
    if (email === "") info.Email = "MJ08 Property email is invalid: MJ03 A non-empty value is required"
    else {
      const problem = emailProblem(email)
      if (problem !== undefined) info.Email = `MJ08 Property email is invalid: ${problem}`
    }
    const action = typeof Action === "string" ? Action : ""
    // Enum values are matched case-insensitively (UNCONFIRMED, §0).
    const actionKey = action.toLowerCase()
    if (!ACTIONS.has(actionKey)) info.Action = `Invalid action: ${action}`

    const updates: Array<readonly [string, Json]> = []
    if (Properties !== undefined && Properties !== null) {
      if (!isJsonObject(Properties)) {
        // A stringified object is the classic mistake (§1); reject it rather than ignore it.
        info.Properties = "MJ08 Property Properties is invalid: a JSON object is required"
      } else {
        const problems: Array<Record<string, string>> = []
        for (const key of Object.keys(Properties)) {
          const value = Properties[key]!
          const meta = metadataByName.get(key.toLowerCase())
          // Only static properties can be set through managecontact (§1).
          if (meta === undefined || meta.namespace !== "static") problems.push({ [key]: "Property not defined" })
          else if (value !== null && !fitsDatatype(meta.datatype, value)) {
            problems.push({ [key]: "Property type does not match definition" })
          } else updates.push([meta.name, value])
        }
        if (problems.length > 0) info.Properties = problems
      }
    }
    if (Object.keys(info).length > 0) return error(400, "Object properties invalid", info)

    const key = email.toLowerCase()
    const stamp = isoSeconds(now)
    let contact = contactsByEmail.get(key)
    if (contact === undefined) {
      contact = {
        id: nextContactId++,
        email: key,
        name: "",
        createdAt: stamp,
        lastUpdateAt: stamp,
        properties: new Map(),
        lists: new Map()
      }
      contactsByEmail.set(key, contact)
      contactsById.set(contact.id, contact)
    }
    if (typeof Name === "string") contact.name = Name
    for (const [name, value] of updates) {
      // null clears a property (stated for managemanycontacts; for managecontact UNCONFIRMED, §1).
      if (value === null) contact.properties.delete(name)
      else contact.properties.set(name, value)
    }
    contact.lastUpdateAt = stamp

    const current = contact.lists.get(list.id)
    switch (actionKey) {
      case "addforce":
        setMembership(contact, list, "subscribed")
        break
      case "addnoforce":
        if (current === undefined) setMembership(contact, list, "subscribed")
        break
      case "unsub":
        // UNCONFIRMED (§1): for a contact not in the list we add it as unsubscribed, so that a
        // later addnoforce cannot subscribe someone who withdrew consent. Mailjet may answer 400.
        setMembership(contact, list, "unsubscribed")
        break
      case "remove":
        // UNCONFIRMED (§1): removing a non-member is a no-op success here.
        setMembership(contact, list, undefined)
        break
    }

    return envelope(201, [{
      ContactID: contact.id,
      Email: contact.email,
      Action: action,
      Name: contact.name,
      // The reply carries all the contact's properties, not only those sent (§1).
      Properties: propertiesObject(contact)
    }])
  }

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
    if (metadataByName.has(name.toLowerCase())) {
      // By analogy with the contact duplicate reply (§5: UNCONFIRMED).
      return error(400, `MJ18 A ContactMetadata resource with value "${name}" for Name already exists.`)
    }
    return envelope(201, [renderMetadata(defineMetadata(name, known, ns))])
  }

  const createList = (body: Body, now: number): Outcome => {
    const parsed = parseObject(body)
    if (!parsed.ok) return parsed.outcome
    const read = readFields(parsed.value, "TContactsList", ["Name", "IsDeleted", "Address"])
    if (!read.ok) return read.outcome
    const name = read.fields.Name
    if (typeof name !== "string" || name === "") {
      return error(400, "Object properties invalid", "MJ08 Property Name is invalid: MJ04 Value must have at least length 1")
    }
    for (const l of lists.values()) {
      if (l.name === name) return error(400, `MJ18 A ContactsList resource with value "${name}" for Name already exists.`)
    }
    let id = 1
    for (const l of lists.keys()) id = Math.max(id, l + 1)
    const row: ListRow = { id, name, address: id.toString(36).padStart(9, "x"), createdAt: isoSeconds(now), subscribers: 0 }
    lists.set(id, row)
    return envelope(201, [renderList(row)])
  }

  const findContact = (idOrEmail: string): Outcome => {
    if (/^\d+$/.test(idOrEmail)) {
      const c = contactsById.get(Number(idOrEmail))
      return c === undefined ? NOT_FOUND : envelope(200, [renderContact(c)])
    }
    if (!idOrEmail.includes("@")) {
      // Live wording (§2, JAVA-IT).
      return error(400, `Invalid email address "${idOrEmail}", reason: "No @ character in mail"`)
    }
    const c = contactsByEmail.get(idOrEmail.toLowerCase())
    return c === undefined ? NOT_FOUND : envelope(200, [renderContact(c)])
  }

  const route = (method: string, segments: ReadonlyArray<string>, query: Query, body: Body, now: number): Outcome => {
    const resource = segments[0] ?? ""
    const id = segments[1]
    const action = segments[2]
    const get = method === "GET" || method === "HEAD"
    switch (resource.toLowerCase()) {
      case "contactslist": {
        if (id === undefined) {
          if (get) return page([...lists.values()], query, renderList)
          return method === "POST" ? createList(body, now) : METHOD_NOT_ALLOWED
        }
        if (segments.length > 3) return unknownResource(segments.slice(2).join("/"))
        const list = /^\d+$/.test(id) ? lists.get(Number(id)) : undefined
        if (action === undefined) {
          if (!get) return METHOD_NOT_ALLOWED
          return list === undefined ? NOT_FOUND : envelope(200, [renderList(list)])
        }
        if (action.toLowerCase() !== "managecontact") return unknownResource(action)
        if (method !== "POST") return METHOD_NOT_ALLOWED
        return list === undefined ? NOT_FOUND : manageContact(list, body, now)
      }
      case "contactmetadata": {
        if (id === undefined) {
          if (get) return page([...metadataById.values()], query, renderMetadata)
          return method === "POST" ? createMetadata(body) : METHOD_NOT_ALLOWED
        }
        if (action !== undefined) return unknownResource(segments.slice(2).join("/"))
        if (!get) return METHOD_NOT_ALLOWED
        // By ID, or by name as a convenience.
        const m = /^\d+$/.test(id) ? metadataById.get(Number(id)) : metadataByName.get(id.toLowerCase())
        return m === undefined ? NOT_FOUND : envelope(200, [renderMetadata(m)])
      }
      case "contact": {
        if (action !== undefined) return unknownResource(segments.slice(2).join("/"))
        if (!get) return METHOD_NOT_ALLOWED
        if (id === undefined) return page([...contactsById.values()], query, renderContact)
        return findContact(id)
      }
      default:
        return unknownResource(resource)
    }
  }

  const respond = (request: Incoming, body: Body, pathname: string, search: string): Outcome => {
    const f = faults
    // Outage and resets happen before authentication: they model the service or the network failing.
    if (f.outage === true) return unavailable
    if (f.resetRate !== undefined && f.resetRate > 0 && random() < f.resetRate) return RESET

    const raw = pathname.split("/")
    const segments: Array<string> = []
    for (let i = 1; i < raw.length; i++) {
      if (raw[i] !== "") {
        try {
          segments.push(decodeURIComponent(raw[i]!))
        } catch {
          segments.push(raw[i]!)
        }
      }
    }
    // Outside /v3 the front proxy answers with its own HTML 404 (§0).
    if (segments[0] !== "v3") return reply(404, NGINX_404_BODY, "text/html", "Not Found")
    if (!isAuthorized(request.authorization)) return UNAUTHORIZED
    // Mailjet limits per API key (§3), so only authenticated requests count.
    if (f.maxRps !== undefined && !admit(request.now, f.maxRps)) return TOO_MANY
    if (f.errorRate !== undefined && f.errorRate > 0 && random() < f.errorRate) {
      return random() < 0.5 ? internalError() : unavailable
    }
    const module = segments[1] ?? ""
    if (module.toLowerCase() !== "rest") {
      return reply(
        500,
        JSON.stringify({
          ErrorInfo: "EFPWebError",
          ErrorMessage: `Could not determine HTTP module for request "${module}"`,
          StatusCode: 500
        }),
        "application/json",
        "Internal error"
      )
    }
    return route(request.method, segments.slice(2), parseQuery(search), body, request.now)
  }

  return {
    handle: (request) => {
      const q = request.url.indexOf("?")
      const pathname = q === -1 ? request.url : request.url.slice(0, q)
      const search = q === -1 ? "" : request.url.slice(q + 1)
      const body = readBody(request.body)
      const outcome = respond(request, body, pathname, search)
      if (recording) {
        record({
          method: request.method,
          path: request.url,
          body: body.json !== undefined ? body.json.value : body.raw === "" ? undefined : body.raw,
          status: outcome._tag === "Reply" ? outcome.status : 0,
          at: request.now
        })
      }
      return outcome
    },
    latencyMs: () => faults.latencyMs ?? 0,
    contacts: () => [...contactsById.values()].map(snapshot),
    contact: (email) => {
      const c = contactsByEmail.get(email.toLowerCase())
      return c === undefined ? undefined : snapshot(c)
    },
    requests: () => records.length < recordLimit ? records.slice() : [...records.slice(recordHead), ...records.slice(0, recordHead)],
    setFaults: (next) => {
      faults = next
    },
    reset: () => {
      contactsByEmail = new Map()
      contactsById = new Map()
      nextContactId = 1
      for (const l of lists.values()) l.subscribers = 0
      records = []
      recordHead = 0
      window = []
      windowHead = 0
    }
  }
}
