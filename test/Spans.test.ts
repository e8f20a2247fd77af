/**
 * Coarse spans, against the simulator: preflight, each bulk job and each window have one, and an
 * event on the per-event path has none (its path is `Effect.fnUntraced`, so tracing costs nothing
 * per event).
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Layer, Stream, Tracer } from "effect"
import { Delivery } from "../src/Delivery/Delivery.js"
import { preflight } from "../src/Mailjet/Preflight.js"
import { DefaultPreset } from "../src/Preset/Preset.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { clientLayer, deliveryLayer, simulatorOptions } from "./support/layers.js"

/** Runs `effect` with a tracer that records the name of every span started, over the default one. */
const spansOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const names: Array<string> = []
    const native = yield* Effect.tracer
    const recording = Tracer.make({
      span: (name, ...rest) => {
        names.push(name)
        return native.span(name, ...rest)
      },
      context: native.context
    })
    const value = yield* Effect.withTracer(effect, recording)
    return { value, names }
  })

const line = (i: number, contact: number) =>
  JSON.stringify({
    type: "track",
    event: "Signed Up",
    messageId: `m${i}`,
    properties: {},
    context: { traits: { email: `c${contact}@example.com` }, consent: { marketing: true } }
  })

describe("spans", () => {
  it.live("preflight has one span", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      const { names } = yield* spansOf(preflight(DefaultPreset, { createMissing: false })).pipe(Effect.provide(clientLayer(sim.url)))
      expect(names).toEqual(["Mailjet.preflight"])
    }).pipe(Effect.provide(Simulator.layer(simulatorOptions()))))

  it.live("a window and each of its bulk jobs have a span; events sent one by one have none", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      const lines = Array.from({ length: 6 }, (_, i) => line(i, i))
      const bulk = yield* spansOf(Effect.flatMap(Delivery, (d) => Stream.runCollect(d.run(Stream.fromIterable(lines))))).pipe(
        Effect.provide(deliveryLayer(sim.url, { bulk: "always", bulkSize: 2, bulkJobTimeout: Duration.seconds(5) }))
      )
      expect(Chunk.toArray(bulk.value).map((r) => r.outcome.outcome)).toEqual(lines.map(() => "delivered"))
      // Six contacts in jobs of at most two, in however many windows they were gathered into.
      expect(bulk.names.filter((n) => n === "Bulk.job").length).toBeGreaterThanOrEqual(3)
      expect(bulk.names.filter((n) => n === "Delivery.window").length).toBeGreaterThanOrEqual(1)
      expect(new Set(bulk.names)).toEqual(new Set(["Bulk.job", "Delivery.window"]))
      const one = yield* spansOf(Effect.flatMap(Delivery, (d) => Stream.runCollect(d.run(Stream.fromIterable(lines))))).pipe(
        Effect.provide(deliveryLayer(sim.url, { bulk: "off" }))
      )
      expect(Chunk.size(one.value)).toBe(6)
      expect(one.names).toEqual([])
    }).pipe(Effect.provide(Layer.fresh(Simulator.layer(simulatorOptions())))))
})
