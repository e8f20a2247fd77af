/**
 * A local Mailjet (Contacts REST API v3) emulator: same paths, auth, envelopes, errors and
 * subscription state, plus injectable faults. A dev tool (`signal-mailjet simulate`) and a test
 * fixture. The behaviour follows recorded Mailjet exchanges (sources in `Replies.ts`); the state machine and
 * validation live in `Core.ts` and the modules beside it; this one puts them on an HTTP server.
 *
 * Fault order per request: outage (503) → connection reset → auth (401) → rate limit (429) →
 * error rate (500/503) → the request itself → latency (applied after the change, before the reply).
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import type * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Http from "node:http"
import { makeCore, type Outcome, type SimulatedContact, type RecordedRequest, type SimulatorFaults, type SimulatorOptions } from "./Core.js"

export type {
  Datatype,
  Membership,
  RecordedRequest,
  SimulatedContact,
  SimulatorFaults,
  SeedContacts,
  SimulatorOptions
} from "./Core.js"
export { FRESH_ACCOUNT_PROPERTIES, seededEmail, seededUnsubscribed, TOO_MANY_REQUESTS_BODY } from "./Core.js"

/** The simulator's state, independent of the socket it is served on. */
export interface SimulatorState {
  readonly contacts: Effect.Effect<ReadonlyArray<SimulatedContact>>
  /** Matched case-insensitively, like the server does. */
  readonly contact: (email: string) => Effect.Effect<Option.Option<SimulatedContact>>
  /** Oldest first; bounded by `recordLimit`; empty when `recordRequests` is false. */
  readonly requests: Effect.Effect<ReadonlyArray<RecordedRequest>>
  /** Replaces the whole fault configuration. */
  readonly setFaults: (faults: SimulatorFaults) => Effect.Effect<void>
  /** Clears contacts (and resets ContactIDs), recorded requests, unfinished bulk jobs and the rate window; keeps lists (undeleting them), properties and faults. */
  readonly reset: Effect.Effect<void>
  /** Event callbacks (see Callbacks.ts) not yet answered 200, answered, and given up on. */
  readonly callbackStats: Effect.Effect<{ readonly pending: number; readonly delivered: number; readonly abandoned: number }>
}

export interface SimulatorService extends SimulatorState {
  /** e.g. "http://127.0.0.1:PORT" (no trailing slash). */
  readonly url: string
}

export class Simulator extends Context.Tag("signal-mailjet/Simulator")<Simulator, SimulatorService>() {}

export interface LayerOptions extends SimulatorOptions {
  /** Default 0: a random free port. */
  readonly port?: number | undefined
  /** Default "127.0.0.1". */
  readonly host?: string | undefined
}

const headerValue = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof value === "string" ? value : value?.[0]

/** The Node object behind a request, when it is served by NodeHttpServer (not e.g. a web handler). */
const nodeSide = <T>(get: () => unknown, type: new(...args: Array<never>) => T): T | undefined => {
  try {
    const value = get()
    return value instanceof type ? value : undefined
  } catch {
    return undefined
  }
}

const nodeResponse = (request: HttpServerRequest.HttpServerRequest) =>
  nodeSide(() => NodeHttpServerRequest.toServerResponse(request), Http.ServerResponse)

const nodeRequest = (request: HttpServerRequest.HttpServerRequest) =>
  nodeSide(() => NodeHttpServerRequest.toIncomingMessage(request), Http.IncomingMessage)

const resetConnection = (request: HttpServerRequest.HttpServerRequest): void => {
  try {
    const socket = NodeHttpServerRequest.toIncomingMessage(request).socket
    // resetAndDestroy sends a TCP RST, so the client sees ECONNRESET (plain destroy gives a FIN).
    if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy()
    else socket.destroy()
  } catch {
    // Not a Node request: nothing to reset.
  }
}

const toResponse = (
  request: HttpServerRequest.HttpServerRequest,
  outcome: Extract<Outcome, { readonly _tag: "Reply" }>
): HttpServerResponse.HttpServerResponse => {
  // Mailjet's reason phrase is its ErrorMessage (§0). NodeHttpServer does not pass statusText on,
  // but Node uses a statusMessage set before writeHead.
  const res = nodeResponse(request)
  if (res !== undefined) res.statusMessage = outcome.reason
  if (outcome.body === "") {
    return HttpServerResponse.empty({
      status: outcome.status,
      statusText: outcome.reason,
      headers: { ...outcome.headers, "content-type": outcome.contentType, "content-length": "0" }
    })
  }
  return HttpServerResponse.text(outcome.body, {
    status: outcome.status,
    statusText: outcome.reason,
    contentType: outcome.contentType,
    ...(outcome.headers === undefined ? {} : { headers: outcome.headers })
  })
}

const hasBody = (request: HttpServerRequest.HttpServerRequest): boolean => {
  const length = request.headers["content-length"]
  return (length !== undefined && length !== "0") || request.headers["transfer-encoding"] !== undefined
}

const MAX_BODY_BYTES = 10 * 1024 * 1024

/**
 * The body as text; "" when it cannot be read (client gone, over 10 MB), which the core answers
 * like a truncated JSON body. Reads the Node stream directly: `request.text` costs about three
 * times the throughput of the whole simulator (measured 5k vs 17k req/s).
 */
const readText = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<string> => {
  const message = nodeRequest(request)
  if (message === undefined) return Effect.orElseSucceed(request.text, () => "")
  return Effect.async<string>((resume) => {
    const chunks: Array<Buffer> = []
    let size = 0
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      // Past the limit keep draining, so the connection stays usable, but drop the bytes.
      if (size <= MAX_BODY_BYTES) chunks.push(chunk)
    }
    const onEnd = (): void => {
      cleanup()
      resume(Effect.succeed(size > MAX_BODY_BYTES ? "" : Buffer.concat(chunks).toString("utf8")))
    }
    const onFail = (): void => {
      cleanup()
      resume(Effect.succeed(""))
    }
    const cleanup = (): void => {
      message.off("data", onData)
      message.off("end", onEnd)
      message.off("error", onFail)
      message.off("close", onFail)
    }
    message.on("data", onData)
    message.once("end", onEnd)
    message.once("error", onFail)
    message.once("close", onFail)
    return Effect.sync(cleanup)
  })
}

/**
 * The simulator as an HttpApp plus its state. Serve `app` on any HttpServer (NodeHttpServer over
 * HTTP or HTTPS); `layer` below does it for the common case.
 */
export const makeApp = (options: SimulatorOptions): Effect.Effect<{
  readonly app: HttpApp.Default
  readonly service: SimulatorState
}, never, Scope.Scope> =>
  Effect.map(Effect.acquireRelease(Effect.sync(() => makeCore(options)), (core) => Effect.sync(core.close)), (core) => {

    const handle = (request: HttpServerRequest.HttpServerRequest, body: string | undefined) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const outcome = core.handle({
          method: request.method,
          url: request.url,
          authorization: headerValue(request.headers["authorization"]),
          body,
          now
        })
        if (outcome._tag === "Reset") {
          resetConnection(request)
          // Nothing can be sent any more: end the fiber; the server's fallback reply goes nowhere.
          return Effect.interrupt
        }
        const response = toResponse(request, outcome)
        const latency = core.latencyMs()
        return latency > 0 ? Effect.as(Effect.sleep(latency), response) : Effect.succeed(response)
      })

    const app: HttpApp.Default = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
      hasBody(request) ? Effect.flatMap(readText(request), (text) => handle(request, text)) : handle(request, undefined)
    ).pipe(
      // The server runs apps uninterruptibly; let a client abort cut the latency sleep short.
      Effect.interruptible
    )

    const service: SimulatorState = {
      contacts: Effect.sync(core.contacts),
      contact: (email) => Effect.sync(() => Option.fromNullable(core.contact(email))),
      requests: Effect.sync(core.requests),
      setFaults: (faults) => Effect.sync(() => core.setFaults(faults)),
      reset: Effect.sync(core.reset),
      callbackStats: Effect.sync(core.callbackStats)
    }
    return { app, service }
  })

const formatUrl = (address: HttpServer.Address): string => {
  if (address._tag === "UnixAddress") return `http://unix:${address.path}`
  const host = address.hostname === "0.0.0.0" || address.hostname === "::"
    ? "127.0.0.1"
    : address.hostname.includes(":")
    ? `[${address.hostname}]`
    : address.hostname
  return `http://${host}:${address.port}`
}

/**
 * Serves the simulator with NodeHttpServer (default 127.0.0.1, random free port) and provides
 * `Simulator`. Times come from the Clock, so run it on the live clock (in @effect/vitest:
 * `layer(Simulator.layer(...), { excludeTestServices: true })`), or latency never elapses.
 */
export const layer = (options: LayerOptions): Layer.Layer<Simulator, ServeError> =>
  Layer.scoped(
    Simulator,
    Effect.gen(function*() {
      const { app, service } = yield* makeApp(options)
      const host = options.host ?? "127.0.0.1"
      const server = yield* NodeHttpServer.make(() => Http.createServer(), { port: options.port ?? 0, host })
      // No per-request spans: they would cost time under a benchmark and clutter the client's traces.
      yield* server.serve(app).pipe(HttpMiddleware.withTracerDisabledWhenEffect(() => true))
      const url = formatUrl(server.address)
      return { ...service, url }
    })
  )
