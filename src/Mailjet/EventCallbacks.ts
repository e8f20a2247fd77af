/**
 * `check --register-webhook URL`: points Mailjet's event callbacks for the four events that
 * suppress (unsub, spam, bounce, blocked) at serve's `/mailjet/events`, through
 * `/v3/REST/eventcallbackurl`. Idempotent: an existing primary URL for an event is updated, not
 * duplicated (Mailjet keeps one per event type and backup flag). Version 2: Mailjet groups the
 * events of one second in a JSON array, which the endpoint accepts. Like every Mailjet call, each
 * goes through the gateway (its slot, 429s fed to the Pacer, the one retry schedule) on the
 * client's transport.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { MailjetConfig } from "./MailjetConfig.js"
import { isTransient, type MailjetUnavailable, type RateLimited, type Unauthorized } from "./MailjetError.js"
import { MailjetGateway } from "./MailjetGateway.js"
import { makeTransport, type Reply } from "./MailjetHttp.js"
import type { MailjetClient } from "./MailjetClient.js"

export const CALLBACK_EVENTS = ["unsub", "spam", "bounce", "blocked"] as const

export interface Registered {
  readonly eventType: string
  readonly id: number
  readonly change: "created" | "updated" | "unchanged"
}

const Row = Schema.Struct({
  ID: Schema.Number,
  EventType: Schema.String,
  IsBackup: Schema.Boolean,
  Url: Schema.String,
  Status: Schema.String,
  Version: Schema.Number
})
/** What a create or an update answers: only its ID is read. */
const Written = Schema.Struct({ ID: Schema.Number })

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

export const registerWebhook = (
  url: string
): Effect.Effect<ReadonlyArray<Registered>, Unauthorized | RateLimited | MailjetUnavailable, MailjetConfig | MailjetClient> =>
  Effect.scoped(Effect.gen(function*() {
    const gateway = yield* MailjetGateway.fromContext
    const { decodeOk, errorDetails, request, send, unavailable } = yield* makeTransport(yield* MailjetConfig)
    const [rowsOf, writtenOf] = [decodeOk(Schema.Struct({ Data: Schema.Array(Row) })), decodeOk(Schema.Struct({ Data: Schema.Array(Written) }))]
    const call = <A>(decode: (res: Reply) => Effect.Effect<{ readonly Data: ReadonlyArray<A> }, MailjetUnavailable>, method: "GET" | "POST" | "PUT", path: string, body?: unknown) =>
      Effect.retry(
        gateway.paced(send(request(method, path, body), {
          ok: (res) => Effect.map(decode(res), (rows) => rows.Data),
          status: (res) => Effect.fail(unavailable(`eventcallbackurl answered ${res.status}: ${errorDetails(res).message}`))
        })),
        { schedule: gateway.schedule, while: isTransient }
      )
    const rows = yield* call(rowsOf, "GET", "/eventcallbackurl?Limit=1000")
    const out: Array<Registered> = []
    for (const eventType of CALLBACK_EVENTS) {
      const row = rows.find((r) => r.EventType.toLowerCase() === eventType && !r.IsBackup)
      if (row === undefined) {
        const [created] = yield* call(writtenOf, "POST", "/eventcallbackurl", { EventType: eventType, Url: url, Version: 2, IsBackup: false, Status: "alive" })
        out.push({ eventType, id: created?.ID ?? 0, change: "created" })
      } else if (row.Url === url && row.Status === "alive" && row.Version === 2) {
        out.push({ eventType, id: row.ID, change: "unchanged" })
      } else {
        yield* call(writtenOf, "PUT", `/eventcallbackurl/${row.ID}`, { Url: url, Version: 2, Status: "alive" })
        out.push({ eventType, id: row.ID, change: "updated" })
      }
    }
    return out
  }))
