/**
 * Mailjet's event API in the simulator: the `eventcallbackurl` resource, the recipient's own
 * actions (the unsubscribe link in an email, a spam complaint, a hard bounce, a blocked send), and
 * the callbacks Mailjet then posts to the registered URL, retried like Mailjet retries them.
 *
 * Not recorded from live traffic; all of it follows Mailjet's Event API guide, and these points are
 * UNCONFIRMED: the payload fields below (`eventPayload`), `Version: 2` meaning "events of the same
 * second grouped in one JSON array", a spam complaint, hard bounce or block marking the contact
 * unsubscribed from the list (Mailjet may only exclude it from campaigns), and the duplicate reply.
 */
import { envelope, error, METHOD_NOT_ALLOWED, NO_CONTENT, NOT_FOUND, type Outcome } from "./Replies.js"
import type { ContactRow, ListRow, State } from "./State.js"
import { type Body, parseObject, readFields } from "./Validation.js"

export const RECIPIENT_EVENTS = ["unsub", "spam", "bounce", "blocked"] as const
export type RecipientEvent = typeof RECIPIENT_EVENTS[number]

/** Event types Mailjet accepts for a callback URL. */
const EVENT_TYPES = new Set(["sent", "open", "click", "bounce", "spam", "blocked", "unsub"])

export interface CallbackRow {
  readonly id: number
  readonly eventType: string
  url: string
  isBackup: boolean
  status: "alive" | "dead"
  version: 1 | 2
}

export interface CallbackOptions {
  /** Mailjet retries a non-200 answer every 30 s… */
  readonly retryEveryMs?: number | undefined
  /** …for 24 hours. */
  readonly retryForMs?: number | undefined
}

const renderCallback = (r: CallbackRow) => ({
  APIKeyID: 1,
  EventType: r.eventType,
  ID: r.id,
  IsBackup: r.isBackup,
  Status: r.status,
  Url: r.url,
  Version: r.version
})

/** What Mailjet posts for one event (its Event API guide; the message fields are made up here). */
export const eventPayload = (
  event: RecipientEvent,
  contact: ContactRow,
  list: ListRow,
  now: number,
  messageId: number
): Record<string, unknown> => {
  const common = {
    event,
    time: Math.floor(now / 1000),
    MessageID: messageId,
    Message_GUID: `00000000-0000-4000-8000-${String(messageId).padStart(12, "0")}`,
    email: contact.email,
    mj_campaign_id: 0,
    mj_contact_id: contact.id,
    customcampaign: "",
    CustomID: "",
    Payload: ""
  }
  switch (event) {
    case "unsub":
      return { ...common, mj_list_id: list.id, ip: "127.0.0.1", geo: "", agent: "signal-mailjet simulator" }
    case "spam":
      return { ...common, source: "JMRPP" }
    case "bounce":
      return { ...common, blocked: false, hard_bounce: true, error_related_to: "recipient", error: "user unknown" }
    case "blocked":
      return { ...common, error_related_to: "recipient", error: "preblocked" }
  }
}

export const makeCallbacks = (state: State, options: CallbackOptions = {}) => {
  const retryEvery = options.retryEveryMs ?? 30_000
  const retryFor = options.retryForMs ?? 24 * 60 * 60 * 1000
  const rows = new Map<number, CallbackRow>()
  let nextId = 1
  let nextMessageId = 1_000_000
  const timers = new Set<ReturnType<typeof setTimeout>>()
  /** Posts not yet answered 200, and the ones given up on. */
  let pending = 0
  let delivered = 0
  let abandoned = 0
  /** Version 2 URLs: events of the current second, waiting to go as one array. */
  const groups = new Map<string, { second: number; events: Array<Record<string, unknown>> }>()

  const later = (ms: number, f: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t)
      f()
    }, ms)
    timers.add(t)
  }

  /** The URL's `user:pass@` is Basic auth, as Mailjet sends it; fetch refuses credentials in a URL. */
  const post = async (target: string, body: string): Promise<number> => {
    const url = new URL(target)
    const headers: Record<string, string> = { "content-type": "application/json" }
    if (url.username !== "" || url.password !== "") {
      const user = decodeURIComponent(url.username)
      const pass = decodeURIComponent(url.password)
      headers["authorization"] = `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`
      url.username = ""
      url.password = ""
    }
    try {
      const res = await fetch(url, { method: "POST", headers, body, signal: AbortSignal.timeout(10_000) })
      await res.arrayBuffer().catch(() => undefined)
      return res.status
    } catch {
      return 0
    }
  }

  const send = (target: string, body: string, firstAt: number): void => {
    void post(target, body).then((status) => {
      // Only 200 counts as received: anything else, or no answer, is retried.
      if (status === 200) {
        pending--
        delivered++
      } else if (Date.now() - firstAt + retryEvery > retryFor) {
        pending--
        abandoned++
      } else later(retryEvery, () => send(target, body, firstAt))
    })
  }

  const dispatch = (payload: Record<string, unknown>, now: number): void => {
    for (const row of rows.values()) {
      if (row.eventType !== payload["event"] || row.isBackup || row.status !== "alive") continue
      if (row.version === 1) {
        pending++
        send(row.url, JSON.stringify(payload), now)
        continue
      }
      const second = Math.floor(now / 1000)
      const group = groups.get(row.url)
      if (group !== undefined && group.second === second) {
        group.events.push(payload)
        continue
      }
      const fresh = { second, events: [payload] }
      groups.set(row.url, fresh)
      pending++
      // Sent when the second is over, with every event of that second.
      later((second + 1) * 1000 - now, () => {
        if (groups.get(row.url) === fresh) groups.delete(row.url)
        // The retry window runs from the first attempt.
        send(row.url, JSON.stringify(fresh.events), Date.now())
      })
    }
  }

  const upsertFields = (body: Body) => {
    const parsed = parseObject(body)
    if (!parsed.ok) return parsed
    const read = readFields(parsed.value, "TEventCallbackUrl", ["EventType", "Url", "IsBackup", "Status", "Version", "APIKeyID"])
    if (!read.ok) return read
    return { ok: true as const, fields: read.fields }
  }

  /** `/v3/REST/eventcallbackurl[/{id}]`: GET (all, or one), POST (one per event type and backup flag), PUT. */
  const route = (method: string, id: string | undefined, body: Body): Outcome => {
    if (id === undefined) {
      if (method === "GET" || method === "HEAD") return envelope(200, [...rows.values()].map(renderCallback))
      if (method !== "POST") return METHOD_NOT_ALLOWED
      const read = upsertFields(body)
      if (!read.ok) return read.outcome
      const { EventType, IsBackup, Status, Url, Version } = read.fields
      if (typeof Url !== "string" || !/^https?:\/\//.test(Url)) {
        return error(400, "Object properties invalid", "MJ08 Property Url is invalid: an http(s) URL is required")
      }
      const eventType = typeof EventType === "string" ? EventType.toLowerCase() : "open"
      if (!EVENT_TYPES.has(eventType)) {
        return error(400, "Object properties invalid", `MJ08 Property EventType is invalid: "${String(EventType)}"`)
      }
      const isBackup = IsBackup === true || IsBackup === "true"
      for (const r of rows.values()) {
        if (r.eventType === eventType && r.isBackup === isBackup) {
          return error(400, `MJ18 A EventCallbackUrl resource with value "${eventType}" for EventType already exists.`)
        }
      }
      const row: CallbackRow = {
        id: nextId++,
        eventType,
        url: Url,
        isBackup,
        status: Status === "dead" ? "dead" : "alive",
        version: Version === 2 ? 2 : 1
      }
      rows.set(row.id, row)
      return envelope(201, [renderCallback(row)])
    }
    const row = /^\d+$/.test(id) ? rows.get(Number(id)) : undefined
    if (method === "GET" || method === "HEAD") return row === undefined ? NOT_FOUND : envelope(200, [renderCallback(row)])
    if (method === "DELETE") {
      if (row === undefined) return NOT_FOUND
      rows.delete(row.id)
      return NO_CONTENT
    }
    if (method !== "PUT") return METHOD_NOT_ALLOWED
    if (row === undefined) return NOT_FOUND
    const read = upsertFields(body)
    if (!read.ok) return read.outcome
    const { Status, Url, Version } = read.fields
    if (typeof Url === "string") row.url = Url
    if (Status === "alive" || Status === "dead") row.status = Status
    if (Version === 1 || Version === 2) row.version = Version
    return envelope(200, [renderCallback(row)])
  }

  /**
   * The recipient acts on a Mailjet email: `{"Email": …, "ListID"?: …}`. The contact is marked
   * unsubscribed from the list, as Mailjet's link does, and the event goes to the callback URL.
   */
  const recipient = (event: string, body: Body, now: number): Outcome => {
    const kind = RECIPIENT_EVENTS.find((e) => e === event)
    if (kind === undefined) return error(404, `Unknown recipient action "${event}": one of ${RECIPIENT_EVENTS.join(", ")}`)
    const parsed = parseObject(body)
    if (!parsed.ok) return parsed.outcome
    const email = parsed.value["Email"]
    const listId = parsed.value["ListID"] ?? [...state.lists.keys()][0]
    const contact = typeof email === "string" ? state.contactByEmail(email) : undefined
    const list = typeof listId === "number" ? state.lists.get(listId) : undefined
    if (contact === undefined || list === undefined) return NOT_FOUND
    state.setMembership(contact, list, "unsubscribed", now)
    const payload = eventPayload(kind, contact, list, now, nextMessageId++)
    dispatch(payload, now)
    return envelope(200, [payload])
  }

  return {
    route,
    recipient,
    /** Callbacks not yet answered 200 (retrying), answered, and given up on after the retry window. */
    stats: () => ({ pending, delivered, abandoned }),
    close: (): void => {
      for (const t of timers) clearTimeout(t)
      timers.clear()
    }
  }
}

export type Callbacks = ReturnType<typeof makeCallbacks>
