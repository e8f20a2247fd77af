/**
 * `check --register-webhook URL`: points Mailjet's event callbacks for the four events that
 * suppress (unsub, spam, bounce, blocked) at serve's `/mailjet/events`, through
 * `/v3/REST/eventcallbackurl`. Idempotent: an existing primary URL for an event is updated, not
 * duplicated (Mailjet keeps one per event type and backup flag). Version 2: Mailjet groups the
 * events of one second in a JSON array, which the endpoint accepts. A one-shot call, so plain
 * `fetch` rather than the delivery client's pool.
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { MailjetConfig } from "./MailjetConfig.js"
import { MailjetUnavailable, Unauthorized } from "./MailjetError.js"

export const CALLBACK_EVENTS = ["unsub", "spam", "bounce", "blocked"] as const

export interface Registered {
  readonly eventType: string
  readonly id: number
  readonly change: "created" | "updated" | "unchanged"
}

interface Row {
  readonly ID: number
  readonly EventType: string
  readonly IsBackup: boolean
  readonly Url: string
  readonly Status: string
  readonly Version: number
}

/** An http(s) URL; without `user:password@` serve's endpoint (Basic auth) refuses every callback. */
export const checkWebhookUrl = (raw: string): string | undefined => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return "is not a URL; give serve's address, e.g. https://user:password@worker.example.com/mailjet/events"
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must be http(s)"
  if (url.username === "" || url.password === "") {
    return "has no user:password@: serve's /mailjet/events needs MAILJET_WEBHOOK_USER and MAILJET_WEBHOOK_PASSWORD in it"
  }
  return undefined
}

export const registerWebhook = (url: string): Effect.Effect<ReadonlyArray<Registered>, Unauthorized | MailjetUnavailable, MailjetConfig> =>
  Effect.gen(function*() {
    const config = yield* MailjetConfig
    const auth = `Basic ${
      Buffer.from(`${Redacted.value(config.apiKey)}:${Redacted.value(config.secretKey)}`).toString("base64")
    }`
    const call = (method: string, path: string, body?: unknown) =>
      Effect.tryPromise({
        try: async () => {
          const res = await fetch(new URL(`/v3/REST/${path}`, config.baseUrl), {
            method,
            headers: { authorization: auth, "content-type": "application/json" },
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
            signal: AbortSignal.timeout(30_000)
          })
          return { status: res.status, text: await res.text() }
        },
        catch: (e) => new MailjetUnavailable({ detail: e instanceof Error ? e.message : String(e) })
      }).pipe(
        Effect.flatMap((res): Effect.Effect<ReadonlyArray<Row>, Unauthorized | MailjetUnavailable> =>
          res.status === 401
            ? Effect.fail(new Unauthorized())
            : res.status >= 200 && res.status < 300
            ? Effect.try({
              try: () => (JSON.parse(res.text) as { Data: ReadonlyArray<Row> }).Data,
              catch: () => new MailjetUnavailable({ detail: `eventcallbackurl answered ${res.status} with no JSON` })
            })
            : Effect.fail(new MailjetUnavailable({ detail: `eventcallbackurl answered ${res.status}: ${res.text.slice(0, 200)}` }))
        )
      )
    const rows = yield* call("GET", "eventcallbackurl?Limit=1000")
    const out: Array<Registered> = []
    for (const eventType of CALLBACK_EVENTS) {
      const row = rows.find((r) => r.EventType.toLowerCase() === eventType && !r.IsBackup)
      if (row === undefined) {
        const [created] = yield* call("POST", "eventcallbackurl", { EventType: eventType, Url: url, Version: 2, IsBackup: false, Status: "alive" })
        out.push({ eventType, id: created?.ID ?? 0, change: "created" })
      } else if (row.Url === url && row.Status === "alive" && row.Version === 2) {
        out.push({ eventType, id: row.ID, change: "unchanged" })
      } else {
        yield* call("PUT", `eventcallbackurl/${row.ID}`, { Url: url, Version: 2, Status: "alive" })
        out.push({ eventType, id: row.ID, change: "updated" })
      }
    }
    return out
  })
