/**
 * The per-event path sends an event's first attempt on its usual path (a callback, send.ts) and
 * hands any answer but the usual 2xx to the send loop, which reads it there. This law checks the
 * hand-off against what Mailjet received: no attempt is sent twice, lost or left uncounted.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Option, Schema, Stream } from "effect"
import { Delivery } from "../src/Delivery/Delivery.js"
import type { Result } from "../src/Domain/Outcome.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { deliveryLayer, simulatorLayer } from "./support/layers.js"

const Event = Schema.Struct({
  contact: Schema.Literal(0, 1, 2, 3, 4, 5),
  kind: Schema.Literal("Signed Up", "Unsubscribed", "Order Completed")
})
const Faults = Schema.Struct({
  errorRate: Schema.Literal(0, 0.2, 0.5),
  resetRate: Schema.Literal(0, 0.2),
  /** 0: no rate limit; else the simulator answers 429 past it. */
  maxRps: Schema.Literal(0, 300)
})

const emailOf = (contact: number) => `attempt.${contact}@example.com`
const toLine = (e: typeof Event.Type, i: number) =>
  JSON.stringify({
    type: "track",
    event: e.kind,
    messageId: `a${i}`,
    properties: { revenue: i, currency: "EUR" },
    context: { traits: { email: emailOf(e.contact) } }
  })

layer(simulatorLayer(28), { excludeTestServices: true })("attempts against the simulator", (it) => {
  it.effect.prop(
    "law: every managecontact request Mailjet received is counted once, in the attempts of its own event's outcome (the usual path's first attempt and the loop's retries alike)",
    {
      events: Schema.Array(Event).pipe(Schema.minItems(1), Schema.maxItems(40)),
      faults: Faults,
      concurrency: Schema.Literal(1, 4, 16)
    },
    ({ concurrency, events, faults }) =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        yield* sim.setFaults({
          errorRate: faults.errorRate,
          resetRate: faults.resetRate,
          ...(faults.maxRps === 0 ? {} : { maxRps: faults.maxRps })
        })
        const lines = events.map(toLine)
        const results: Array<Result> = []
        const stopped = yield* Effect.flatMap(Delivery, (d) =>
          Stream.runForEach(d.run(Stream.fromIterable(lines)), (r) => Effect.sync(() => results.push(r)))).pipe(
            Effect.provide(deliveryLayer(sim.url, { concurrency, maxAttempts: 3, outageThreshold: 1000, bulk: "off" })),
            Effect.flip,
            Effect.option
          )
        yield* sim.setFaults({})
        expect(Option.map(stopped, (e) => e.message)).toStrictEqual(Option.none())
        // One result per line, in input order.
        expect(results.map((r) => r.line)).toEqual(lines.map((_, i) => i + 1))
        const counted = new Map<string, number>()
        for (const r of results) {
          const email = emailOf(events[r.line - 1]!.contact)
          const o = r.outcome
          const attempts = "attempts" in o && typeof o.attempts === "number" ? o.attempts : 0
          counted.set(email, (counted.get(email) ?? 0) + attempts)
        }
        const received = new Map<string, number>()
        for (const req of yield* sim.requests) {
          if (req.method !== "POST" || !req.path.endsWith("/managecontact")) continue
          const email = String((req.body as { readonly Email?: unknown } | undefined)?.Email ?? "?").toLowerCase()
          received.set(email, (received.get(email) ?? 0) + 1)
        }
        expect(Object.fromEntries([...counted].filter(([, n]) => n > 0)), "attempts counted per contact")
          .toEqual(Object.fromEntries(received))
        // Something was sent: every event of these kinds maps to an update.
        expect([...received.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(events.length)
      }),
    { fastCheck: { numRuns: 30 } }
  )
})
