/**
 * `POST /mailjet/events` on serve's HTTP port: Mailjet's event callbacks. `unsub`, `spam`, a
 * `bounce` with `hard_bounce: true` and `blocked` become suppressions, stored (SuppressionTopic)
 * before the 200: Mailjet retries anything else every 30 s for 24 h, so a 503 while Kafka is away
 * loses nothing. Other events are acknowledged and ignored. One event or a JSON array of them
 * (Mailjet groups the events of one second).
 *
 * Basic auth with `MAILJET_WEBHOOK_USER` / `MAILJET_WEBHOOK_PASSWORD`; off while no password is
 * set. Not the API key and secret: the callback URL, which carries the credentials, is stored in
 * Mailjet and may be logged on the way; a leaked webhook password can only add suppressions.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { timingSafeEqual } from "node:crypto"
import { maskEmail } from "../Delivery/Metrics.js"
import { positiveInt } from "../internal/config.js"
import { normaliseEmail } from "../Mapping.js"
import type { Learnt } from "../Suppressions.js"
import type { SuppressionsUnavailable } from "./SuppressionTopic.js"

export const WEBHOOK_PATH = "/mailjet/events"

/** Mailjet posts one event or a second's worth; far below this. */
export const MAX_BODY_BYTES = 1024 * 1024

export interface WebhookCredentials {
  readonly user: string
  readonly password: Redacted.Redacted<string>
  /** An `unsub` from another list of the account says nothing of this one. */
  readonly listId: number
}

/** The endpoint's credentials; `None` (endpoint off) while `MAILJET_WEBHOOK_PASSWORD` is unset. */
export const webhookCredentials: Config.Config<Option.Option<WebhookCredentials>> = Config.all({
  user: Config.nonEmptyString("MAILJET_WEBHOOK_USER").pipe(Config.withDefault("mailjet")),
  password: Config.option(Config.redacted("MAILJET_WEBHOOK_PASSWORD")),
  listId: positiveInt("MAILJET_LIST_ID")
}).pipe(Config.map(({ listId, password, user }) => Option.map(password, (password) => ({ user, password, listId }))))

/** The fields read; Mailjet sends more (MessageID, mj_list_id, …), which are ignored. */
const CallbackEvent = Schema.Struct({
  event: Schema.String,
  email: Schema.optional(Schema.String),
  time: Schema.optional(Schema.Number),
  hard_bounce: Schema.optional(Schema.Boolean),
  mj_list_id: Schema.optional(Schema.Union(Schema.Number, Schema.String))
})
const decodeBody = Schema.decodeUnknownEither(
  Schema.parseJson(Schema.Union(CallbackEvent, Schema.Array(CallbackEvent).pipe(Schema.minItems(1))))
)

const WHAT: Record<string, string> = {
  unsub: "unsubscribed in Mailjet",
  spam: "marked as spam in Mailjet",
  bounce: "hard-bounced in Mailjet",
  blocked: "blocked by Mailjet"
}

/** Complaints, hard bounces and blocks hold for the whole account; an unsubscribe for its list. */
const suppresses = (e: typeof CallbackEvent.Type, listId: number | undefined): boolean =>
  e.event === "unsub"
    ? listId === undefined || e.mj_list_id === undefined || e.mj_list_id === "" || Number(e.mj_list_id) === listId
    : e.event === "spam" || e.event === "blocked" || (e.event === "bounce" && e.hard_bounce === true)

/**
 * The suppressions a body carries; a message (never the body: it holds emails) when it is not
 * Mailjet's event shape, or a suppressing event has no valid email or time.
 */
export const readCallback = (text: string, listId?: number): Either.Either<ReadonlyArray<Learnt>, string> => {
  const decoded = decodeBody(text)
  if (Either.isLeft(decoded)) {
    return Either.left("not a Mailjet event callback: a JSON object with \"event\", or an array of them")
  }
  const events = Array.isArray(decoded.right) ? decoded.right : [decoded.right as typeof CallbackEvent.Type]
  const learnt: Array<Learnt> = []
  for (const [i, e] of events.entries()) {
    if (!suppresses(e, listId)) continue
    const email = e.email === undefined ? undefined : normaliseEmail(e.email)
    if (email === undefined) return Either.left(`event ${i + 1} (${e.event}) has no valid "email"`)
    const ms = e.time === undefined ? Number.NaN : e.time * 1000
    if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return Either.left(`event ${i + 1} (${e.event}) has no valid "time"`)
    const at = new Date(ms).toISOString().replace(/\.000Z$/, "Z")
    learnt.push({ email, event: e.event, at, reason: `${WHAT[e.event]} at ${at}` })
  }
  return Either.right(learnt)
}

const authorized = (header: string | undefined, credentials: WebhookCredentials): boolean => {
  if (header === undefined || !/^basic /i.test(header)) return false
  const given = Buffer.from(header.slice(6).trim(), "base64")
  const expected = Buffer.from(`${credentials.user}:${Redacted.value(credentials.password)}`, "utf8")
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** The body as text, or undefined past `MAX_BODY_BYTES` (by its length, or as it is read) or when it fails. */
const readBounded = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<string | undefined> => {
  const length = Number(request.headers["content-length"] ?? "0")
  if (length > MAX_BODY_BYTES) return Effect.succeed(undefined)
  return request.stream.pipe(
    Stream.runFoldWhile(
      { size: 0, chunks: [] as Array<Uint8Array> },
      (acc) => acc.size <= MAX_BODY_BYTES,
      (acc, chunk) => {
        acc.chunks.push(chunk)
        return { size: acc.size + chunk.length, chunks: acc.chunks }
      }
    ),
    Effect.map((acc) => (acc.size > MAX_BODY_BYTES ? undefined : Buffer.concat(acc.chunks).toString("utf8"))),
    Effect.orElseSucceed(() => undefined)
  )
}

const plain = (status: number, text: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(text, { status, headers })

/** The route, on a router; `store` must have the suppressions durably before it succeeds. */
export const route = (
  credentials: WebhookCredentials,
  store: (learnt: ReadonlyArray<Learnt>) => Effect.Effect<void, SuppressionsUnavailable>
) =>
  HttpRouter.post(
    WEBHOOK_PATH,
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      if (!authorized(request.headers["authorization"], credentials)) {
        return plain(401, "wrong or missing credentials: use the MAILJET_WEBHOOK_USER and MAILJET_WEBHOOK_PASSWORD of this worker in the callback URL", {
          "www-authenticate": "Basic realm=\"signal-mailjet\""
        })
      }
      const text = yield* readBounded(request)
      if (text === undefined) {
        // The rest of the body is not read: close the connection rather than drain it.
        return plain(413, `body over ${MAX_BODY_BYTES} bytes, or unreadable`, { connection: "close" })
      }
      const learnt = readCallback(text, credentials.listId)
      if (Either.isLeft(learnt)) {
        yield* Effect.logWarning(`webhook: refused a body: ${learnt.left}`)
        return plain(400, learnt.left)
      }
      if (learnt.right.length === 0) return plain(200, "ok: nothing to suppress")
      const stored = yield* Effect.either(store(learnt.right))
      if (Either.isLeft(stored)) {
        // Not stored: Mailjet sends it again in 30 s.
        yield* Effect.logWarning(`webhook: not stored, Mailjet will retry: ${stored.left.message}`)
        return plain(503, "not stored; retry later")
      }
      yield* Effect.logInfo(
        `webhook: stored ${learnt.right.length} suppressions: ${learnt.right.map((l) => `${l.event} ${maskEmail(l.email)}`).join(", ")}`
      )
      return plain(200, "ok")
    })
  )
