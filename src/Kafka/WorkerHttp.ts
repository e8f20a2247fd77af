/** `serve`'s HTTP side: liveness, readiness and Prometheus metrics. */
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

export const isReady = (s: WorkerStatus): boolean => s.preflight && s.joined && !s.paused

export const router = (status: Ref.Ref<WorkerStatus>) =>
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
    )
  )

export const layer = (status: Ref.Ref<WorkerStatus>, options: { readonly port: number; readonly host: string }) =>
  router(status).pipe(
    HttpServer.serve(),
    HttpServer.withLogAddress,
    Layer.provide(NodeHttpServer.layer(createServer, options))
  )
