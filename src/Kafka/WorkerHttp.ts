/** `serve`'s HTTP side: liveness, readiness, Prometheus metrics, and Mailjet's event callbacks. */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import { createServer, type Server } from "node:http"
import type { Socket } from "node:net"
import type { WorkerStatus } from "./WorkerStatus.js"
import * as Prometheus from "./Prometheus.js"
import * as Webhook from "./Webhook.js"

export const isReady = (s: WorkerStatus): boolean => s.preflight && s.joined && !s.paused

/** Mailjet's event callbacks (Webhook.ts), when their credentials are set. */
export interface WebhookOptions {
  readonly credentials: Webhook.WebhookCredentials
  readonly store: Parameters<typeof Webhook.route>[1]
}

export const router = (status: Ref.Ref<WorkerStatus>, webhook?: WebhookOptions) =>
  HttpRouter.empty.pipe(
    HttpRouter.get("/health", HttpServerResponse.text("ok")),
    HttpRouter.get(
      "/ready",
      Effect.map(Ref.get(status), (s) =>
        isReady(s)
          ? HttpServerResponse.text("ready")
          : HttpServerResponse.unsafeJson({ ready: false, ...s }, { status: 503 }))
    ),
    HttpRouter.get(
      "/metrics",
      Effect.map(Prometheus.render, (body) =>
        HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
    ),
    (r) => (webhook === undefined ? r : r.pipe(Webhook.route(webhook.credentials, webhook.store)))
  )

/**
 * Mailjet posts a second's events at most (far below the 1 MiB body limit) in one go, so a
 * client gets 10 s for its headers and 30 s for the whole request; Node's defaults (60 s and
 * 300 s, checked every 30 s) let a stalled one hold its socket for minutes.
 */
export const LIMITS = {
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
  connectionsCheckingInterval: 1_000
} as const

/** The oldest connection with no request in progress (a `Map` keeps insertion order: oldest first). */
export const oldestIdle = <K>(open: ReadonlyMap<K, number>): K | undefined => {
  for (const [connection, requests] of open) if (requests === 0) return connection
  return undefined
}

/**
 * At most `max` connections, so that strangers cannot use up the process's file handles (and
 * with them Kafka's and Mailjet's sockets). A plain cap would lock `/health` out while they hold
 * every slot, so at the cap the oldest connection with no request in progress goes to admit the
 * new one: a half-sent header or an idle keep-alive, never a request being answered. Only when
 * every slot has one (which takes the webhook's credentials past the first reply) is the newcomer refused.
 */
export const limitConnections = (server: Server, max: number): void => {
  const open = new Map<Socket, number>() // requests in progress on each connection
  server.on("connection", (socket: Socket) => {
    if (open.size >= max) {
      const idle = oldestIdle(open)
      if (idle === undefined) return void socket.destroy()
      open.delete(idle)
      idle.destroy()
    }
    open.set(socket, 0)
    socket.once("close", () => open.delete(socket))
  })
  server.on("request", (request, response) => {
    const socket = request.socket
    const add = (n: number) => {
      const requests = open.get(socket)
      if (requests !== undefined) open.set(socket, requests + n)
    }
    add(1)
    response.once("close", () => add(-1))
  })
}

export const layer = (
  status: Ref.Ref<WorkerStatus>,
  options: { readonly port: number; readonly host: string; readonly maxConnections: number },
  webhook?: WebhookOptions
) =>
  Layer.unwrapEffect(Effect.sync(() => {
    const server = createServer(LIMITS)
    limitConnections(server, options.maxConnections)
    // Ahead of the platform's own close, which waits for every connection: Node stops the header
    // and request timeouts once a server closes, so a stalled one would hold the process for good.
    // Mailjet retries a callback cut off here; nothing else is lost.
    const closeAll = Layer.scopedDiscard(Effect.addFinalizer(() =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      })
    ))
    return router(status, webhook).pipe(
      HttpServer.serve(),
      HttpServer.withLogAddress,
      Layer.merge(closeAll),
      Layer.provide(NodeHttpServer.layer(() => server, { port: options.port, host: options.host }))
    )
  }))
