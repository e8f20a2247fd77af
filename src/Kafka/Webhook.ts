/**
 * `POST /mailjet/events` on serve's HTTP port: Mailjet's event callbacks. `unsub`, `spam`, a
 * `bounce` with `hard_bounce: true` and `blocked` become suppressions, stored (SuppressionTopic)
 * before the 200: Mailjet retries anything else every 30 s for 24 h, so a 503 while Kafka is away
 * loses nothing. Other events are acknowledged and ignored. One event or a JSON array of them
 * (Mailjet groups the events of one second), each read on its own (WebhookBody).
 *
 * Basic auth with `MAILJET_WEBHOOK_USER` / `MAILJET_WEBHOOK_PASSWORD`; off while no password is
 * set. Not the API key and secret: the callback URL, which carries the credentials, is stored in
 * Mailjet and may be logged on the way; a leaked webhook password can only add suppressions.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { timingSafeEqual } from "node:crypto"
import { maskEmail } from "../Delivery/Metrics.js"
import { positiveInt } from "../internal/config.js"
import type { Learnt } from "../Suppressions.js"
import type { SuppressionsUnavailable } from "./SuppressionTopic.js"
import { type CallbackRead, describeSkipped, readCallback } from "./WebhookBody.js"

export const WEBHOOK_PATH = "/mailjet/events"

/** Mailjet posts one event or a second's worth; far below this. */
export const MAX_BODY_BYTES = 1024 * 1024

export interface WebhookCredentials {
  readonly user: string
  readonly password: Redacted.Redacted<string>
  /** An `unsub` from another list of the account says nothing of this one. */
  readonly listId: number
}

/** Set but blank is a mistake, not an endpoint anyone can call with an empty password. */
const password = Config.redacted("MAILJET_WEBHOOK_PASSWORD").pipe(
  Config.mapOrFail((p) =>
    Redacted.value(p).trim() === ""
      ? Either.left(ConfigError.InvalidData(
        ["MAILJET_WEBHOOK_PASSWORD"],
        "is set but empty: unset it to turn /mailjet/events off, or set the password of the callback URL"
      ))
      : Either.right(p)
  )
)

/** The endpoint's credentials; `None` (endpoint off) while `MAILJET_WEBHOOK_PASSWORD` is unset. */
export const webhookCredentials: Config.Config<Option.Option<WebhookCredentials>> = Config.all({
  user: Config.nonEmptyString("MAILJET_WEBHOOK_USER").pipe(Config.withDefault("mailjet")),
  password: Config.option(password),
  listId: positiveInt("MAILJET_LIST_ID")
}).pipe(Config.map(({ listId, password, user }) => Option.map(password, (password) => ({ user, password, listId }))))

/**
 * Basic auth, decoded strictly: Node's base64 decoder skips characters outside the alphabet, so
 * junk around valid credentials would pass. Only a token that is the canonical base64 of what it
 * decodes to counts (its padding may be left out, as RFC 4648 allows).
 */
export const authorized = (header: string | undefined, credentials: WebhookCredentials): boolean => {
  if (header === undefined || !/^basic /i.test(header)) return false
  const token = header.slice(6).trim()
  const given = Buffer.from(token, "base64")
  const canonical = given.toString("base64")
  if (token !== canonical && token !== canonical.replace(/=+$/, "")) return false
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

const skippedEvents = Metric.counter("signal_mailjet_webhook_events_skipped_total", {
  description: "Events in Mailjet's callbacks not acted on, by reason",
  incremental: true
})

/** One warning line per body, counts only: the events hold emails. */
const reportSkipped = ({ skipped, undated }: CallbackRead): Effect.Effect<void> => {
  if (skipped.length === 0 && undated === 0) return Effect.void
  const parts = skipped.length > 0 ? [describeSkipped(skipped)] : []
  if (undated > 0) parts.push(`${undated} dated when received (no usable "time")`)
  return Effect.zipRight(
    Effect.forEach(skipped, (reason) => Metric.increment(Metric.tagged(skippedEvents, "reason", reason)), { discard: true }),
    Effect.logWarning(`webhook: ${parts.join("; ")}`)
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
      const read = readCallback(text, { listId: credentials.listId, now: new Date() })
      if (Either.isLeft(read)) {
        yield* Effect.logWarning(`webhook: refused a body: ${read.left}`)
        return plain(400, read.left)
      }
      yield* reportSkipped(read.right)
      const learnt = read.right.learnt
      if (learnt.length === 0) return plain(200, "ok: nothing to suppress")
      const stored = yield* Effect.either(store(learnt))
      if (Either.isLeft(stored)) {
        // Not stored: Mailjet sends it again in 30 s.
        yield* Effect.logWarning(`webhook: not stored, Mailjet will retry: ${stored.left.message}`)
        return plain(503, "not stored; retry later")
      }
      // A second of callbacks can hold thousands: the first few name the rest's kind.
      const named = learnt.slice(0, 10).map((l) => `${l.event} ${maskEmail(l.email)}`).join(", ")
      yield* Effect.logInfo(
        `webhook: stored ${learnt.length} suppressions: ${named}${learnt.length > 10 ? `, and ${learnt.length - 10} more` : ""}`
      )
      return plain(200, "ok")
    })
  )
