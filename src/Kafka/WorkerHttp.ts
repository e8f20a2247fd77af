/** `serve`'s HTTP side: liveness, readiness, Prometheus metrics, and Mailjet's event callbacks. */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import { createServer } from "node:http"
import type { WorkerStatus } from "./KafkaWorker.js"
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

export const layer = (
  status: Ref.Ref<WorkerStatus>,
  options: { readonly port: number; readonly host: string },
  webhook?: WebhookOptions
) =>
  router(status, webhook).pipe(
    HttpServer.serve(),
    HttpServer.withLogAddress,
    Layer.provide(NodeHttpServer.layer(createServer, options))
  )
