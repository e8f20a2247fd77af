/**
 * The transport under MailjetClient: one request on undici's dispatcher, the statuses every endpoint
 * shares, envelopes decoded, error bodies read. One attempt per call, bounded by the configured
 * timeout: pacing and retrying are the gateway's (MailjetGateway), which sees every lane at once.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { type Dispatcher, Pool } from "undici"
import type { MailjetSettings } from "./MailjetConfig.js"
import { type ErrorDetails, parseJson, readErrorBody } from "./ErrorBody.js"
import { MailjetUnavailable, RateLimited, UNREACHABLE_CODES, Unauthorized } from "./MailjetError.js"

export { type ErrorDetails, excerpt, parseJson, readErrorBody } from "./ErrorBody.js"

type Transient = RateLimited | MailjetUnavailable

const ServerErrorBody = Schema.Struct({ ErrorIdentifier: Schema.String })
const decodeServerError = Schema.decodeUnknownOption(ServerErrorBody)

/** A 5xx summarised, keeping the `ErrorIdentifier` GUID of Mailjet's 500 body: its support asks for it. */
const serverError = (res: Reply): string => {
  const body = decodeServerError(parseJson(res.text))
  return body._tag === "Some" ? `HTTP ${res.status}, ErrorIdentifier ${body.value.ErrorIdentifier}` : `HTTP ${res.status}`
}

/** A `managemanycontacts` body around its Contacts array, already written as JSON (UTF-8). */
export const bulkBody = (action: string, contacts: Uint8Array): Uint8Array =>
  Buffer.concat([Buffer.from(`{"Action":${JSON.stringify(action)},"Contacts":`), contacts, Buffer.from("}")])

/** One HTTP exchange, its body read whole: every Mailjet reply is small. */
export interface Reply {
  readonly status: number
  readonly text: string
}

/**
 * One exchange's state and undici's handler for it, as one object: a request allocates it and no
 * closure per callback. Settles once: the first of the reply, a transport error, the timeout and
 * an interruption wins.
 */
class Exchange implements Dispatcher.DispatchHandler {
  settled = false
  /** Set when the exchange is awaited as an Effect (`exchange`); else `done` is called (`exchangeNow`). */
  resume: ((effect: Effect.Effect<Reply, MailjetUnavailable>) => void) | undefined = undefined
  controller: Dispatcher.DispatchController | undefined = undefined
  /** An abort wanted before undici starts the request (it waits in the pool's queue), done when it starts. */
  abortWith: Error | undefined = undefined
  timer: ReturnType<typeof setTimeout> | undefined = undefined
  status = 0
  readonly chunks: Array<Buffer> = []
  constructor(
    readonly done: ((reply: Reply | MailjetUnavailable) => void) | undefined,
    readonly origin: string,
    readonly onTimeout: () => MailjetUnavailable
  ) {}
  /** True for the first caller only: the exchange ends once. */
  end(): boolean {
    if (this.settled) return false
    this.settled = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    return true
  }
  settle(reply: Reply | MailjetUnavailable): void {
    if (!this.end()) return
    if (this.done !== undefined) this.done(reply)
    else this.resume!(reply instanceof MailjetUnavailable ? Effect.fail(reply) : Effect.succeed(reply))
  }
  /** Interrupted by its caller: ends it without an answer. */
  cancel(): void {
    if (this.end()) this.abort(new Error("interrupted"))
  }
  abort(error: Error): void {
    if (this.controller === undefined) this.abortWith = error
    else if (!this.controller.aborted) this.controller.abort(error)
  }
  timedOut(): void {
    // Settled first: aborting reports an error of its own, which this one wins over.
    this.settle(this.onTimeout())
    this.abort(new Error("timed out"))
  }
  onRequestStart(c: Dispatcher.DispatchController): void {
    this.controller = c
    if (this.abortWith !== undefined) c.abort(this.abortWith)
  }
  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode
  }
  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    this.chunks.push(chunk)
  }
  onResponseEnd(): void {
    const c = this.chunks
    this.settle({ status: this.status, text: (c.length === 1 ? c[0]! : Buffer.concat(c)).toString("utf8") })
  }
  onResponseError(_c: Dispatcher.DispatchController, error: Error): void {
    const code = (error as NodeJS.ErrnoException).code
    this.settle(
      new MailjetUnavailable({
        detail: `transport error: ${error.message}`,
        ...(code !== undefined && UNREACHABLE_CODES.has(code) ? { unreachable: this.origin } : {})
      })
    )
  }
}
const timedOut = (x: Exchange) => x.timedOut()

/**
 * One request on undici's dispatcher API, the layer `fetch` and `request` are built on, without
 * their streams, AbortController or header objects: `@effect/platform`'s HttpClient on undici cost
 * more CPU per request than all the rest of an event's work (measured, see BENCHMARKS.md).
 * `timeoutMs` bounds the whole exchange with a real timer, not Effect's Clock: a race per request
 * would cost two fibers, and a timeout is about the wire, which virtual time does not move.
 * Interruption aborts the request.
 */
const exchange = (
  pool: Pool,
  options: Dispatcher.DispatchOptions,
  timeoutMs: number,
  onTimeout: () => MailjetUnavailable,
  origin: string
): Effect.Effect<Reply, MailjetUnavailable> =>
  Effect.async<Reply, MailjetUnavailable>((resume) => {
    const x = new Exchange(undefined, origin, onTimeout)
    x.resume = resume
    start(pool, options, timeoutMs, x)
    return Effect.sync(() => x.cancel())
  })

const start = (pool: Pool, options: Dispatcher.DispatchOptions, timeoutMs: number, x: Exchange): Exchange => {
  pool.dispatch(options, x)
  if (!x.settled) x.timer = setTimeout(timedOut, timeoutMs, x)
  return x
}

/** A started exchange, for a caller that awaits it with a callback: `cancel` ends it unanswered. */
export interface Pending {
  readonly cancel: () => void
}

/**
 * `exchange` with a callback instead of an Effect, for the per-event path (send.ts): `done` is
 * called once, with the reply or a transport failure, unless `cancel` came first.
 */
const exchangeNow = (
  pool: Pool,
  options: Dispatcher.DispatchOptions,
  timeoutMs: number,
  onTimeout: () => MailjetUnavailable,
  origin: string,
  done: (reply: Reply | MailjetUnavailable) => void
): Pending => start(pool, options, timeoutMs, new Exchange(done, origin, onTimeout))

/** Mailjet's largest page (`Limit`). */
export const PAGE = 1000

/** Every page of a paged read, as Mailjet advises: step `Offset` until a short page. */
export const allPages = <A, E>(
  read: (page: { readonly offset: number; readonly limit: number }) => Effect.Effect<ReadonlyArray<A>, E>
): Effect.Effect<Array<A>, E> =>
  Effect.gen(function*() {
    const all: Array<A> = []
    for (let offset = 0;; offset += PAGE) {
      const page = yield* read({ offset, limit: PAGE })
      all.push(...page)
      if (page.length < PAGE) return all
    }
  })

/**
 * The client's connections and the statuses every call shares; the pool closes with the scope.
 * `connections` bounds the sockets: undici keeps a socket a loop turn after its reply before it
 * takes the next request, so a pool without a bound opened a second socket per lane (64 TLS
 * connections for 32 lanes); bounded, the next request waits that turn in the pool's queue.
 */
export const makeTransport = (config: MailjetSettings, connections?: number) => Effect.gen(function*() {
  const listId = config.listId
  const root = new URL("/v3/REST", config.baseUrl)
  const pool = yield* Effect.acquireRelease(
    Effect.sync(() => new Pool(root.origin, connections === undefined ? {} : { connections })),
    // Nothing is in flight by then unless the program was interrupted: do not wait for it.
    (p) => Effect.promise(() => p.destroy())
  )
  const basePath = root.pathname
  const headers = {
    authorization: `Basic ${Buffer.from(`${Redacted.value(config.apiKey)}:${Redacted.value(config.secretKey)}`).toString("base64")}`,
    accept: "application/json"
  }
  const jsonHeaders = { ...headers, "content-type": "application/json" }
  const timeoutMs = Duration.toMillis(config.timeout)
  const timedOut = () => new MailjetUnavailable({ detail: `no answer within ${Duration.format(config.timeout)}` })

  const unavailable = (detail: string) => new MailjetUnavailable({ detail })

  /** `body` as JSON, or bytes already written (bulkBody). */
  const request = (method: "GET" | "POST" | "PUT", path: string, body?: unknown) => {
    const options: Dispatcher.DispatchOptions = body === undefined
      ? { method, path: basePath + path, headers }
      : { method, path: basePath + path, headers: jsonHeaders, body: body instanceof Uint8Array ? body : JSON.stringify(body) }
    return exchange(pool, options, timeoutMs, timedOut, root.origin)
  }
  /** `request` with a callback (exchangeNow). */
  const requestNow = (method: "POST", path: string, body: unknown, done: (reply: Reply | MailjetUnavailable) => void) =>
    exchangeNow(pool, { method, path: basePath + path, headers: jsonHeaders, body: JSON.stringify(body) }, timeoutMs, timedOut, root.origin, done)

  /** Statuses every endpoint shares are mapped here; the rest by `status` (a read may succeed on 404). */
  const reply = <A, E>(on: {
    readonly ok: (res: Reply) => Effect.Effect<A, E | MailjetUnavailable>
    readonly status: (res: Reply) => Effect.Effect<A, E | MailjetUnavailable>
  }) =>
  (res: Reply): Effect.Effect<A, E | Unauthorized | Transient> => {
    const s = res.status
    if (s >= 200 && s < 300) return on.ok(res)
    // 401 and 429 bodies are not JSON (empty, or an HTML page).
    if (s === 401) return Effect.fail(new Unauthorized())
    if (s === 429) return Effect.fail(new RateLimited())
    if (s >= 500 || s === 408) return Effect.fail(unavailable(serverError(res)))
    return on.status(res)
  }
  const send = <A, E>(
    exchanged: Effect.Effect<Reply, MailjetUnavailable>,
    on: {
      readonly ok: (res: Reply) => Effect.Effect<A, E | MailjetUnavailable>
      readonly status: (res: Reply) => Effect.Effect<A, E | MailjetUnavailable>
    }
  ): Effect.Effect<A, E | Unauthorized | Transient> => Effect.flatMap(exchanged, reply(on))

  /**
   * The reply's envelope, with the parser made once rather than per call; `check` (a hand-written
   * test of the usual reply that passes only what the schema accepts) spares the parser per call.
   */
  const decodeOk = <A, I>(schema: Schema.Schema<A, I>, check?: (json: unknown) => A | undefined) => {
    const decode = Schema.decodeUnknownEither(schema)
    return (res: Reply): Effect.Effect<A, MailjetUnavailable> => {
      const json = parseJson(res.text)
      const checked = check?.(json)
      if (checked !== undefined) return Effect.succeed(checked)
      const decoded = decode(json)
      return Either.isRight(decoded)
        ? Effect.succeed(decoded.right)
        : Effect.fail(unavailable(`HTTP ${res.status} with a body that is not a Mailjet envelope`))
    }
  }

  /** A 4xx body as JSON when it is JSON; anything else is summarised by status. */
  const errorDetails = (res: Reply): ErrorDetails => {
    const json = parseJson(res.text)
    return json === undefined
      ? { message: `HTTP ${res.status}`, undefinedProperties: [], onlyProperties: undefined }
      : readErrorBody(json)
  }

  /** A GET of a path relative to `/v3/` (a bulk job's error file). */
  const getV3 = (path: string) =>
    exchange(pool, { method: "GET", path: new URL(path.replace(/^\/+/, ""), new URL("/v3/", config.baseUrl)).pathname, headers }, timeoutMs, timedOut, root.origin)

  /** A DELETE of a path relative to `/v4/` (GDPR erasure, `contacts/{id}`). */
  const deleteV4 = (path: string) =>
    exchange(pool, { method: "DELETE", path: new URL(path, new URL("/v4/", config.baseUrl)).pathname, headers }, timeoutMs, timedOut, root.origin)

  return { listId, request, requestNow, getV3, deleteV4, send, reply, decodeOk, errorDetails, unavailable }
})
