/**
 * The erasure laws over random per-contact histories, against the simulator over real sockets:
 * deletion requests, sign-ups and orders whose timestamps are out of input order (late events),
 * 5xx faults (dead letters), a replay of what failed, a backfill of the whole input again, and
 * one of the updates alone (a source without the deletion requests), per event and in bulk windows. Tombstones are shared by the runs, as the CLI's state file does.
 *
 * Laws: (1) no event at or before an erasure of its contact (one that landed earlier in input
 * order) is sent: it is dropped, naming the erasure; (2) a newer one is never dropped for it, and
 * its contact exists again once it lands; (3) conservation: one result per line, in order; and the
 * final state: a contact exists in Mailjet exactly when the last of its events that landed is not
 * an erasure; an erasure says `erased` exactly when the contact existed.
 */
import { expect, layer } from "@effect/vitest"
import { Effect, Layer, Metric, Option, Schema, Stream } from "effect"
import { Delivery } from "../src/Delivery/Delivery.js"
import type { DeliverySettings } from "../src/Delivery/DeliveryConfig.js"
import type { Result } from "../src/Domain/Outcome.js"
import { ERASED_AFTER, makeTombstones, randomSecret, type TombstoneSet, Tombstones } from "../src/Domain/Tombstones.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { deliveryLayer, simulatorLayer } from "./support/layers.js"

const Kind = Schema.Literal("Signed Up", "Order Completed", "Deletion Requested", "delete")
const GenEvent = Schema.Struct({
  contact: Schema.Literal(0, 1, 2),
  kind: Kind,
  // Few distinct days: late events, and events at the very time of an erasure, are common.
  day: Schema.Int.pipe(Schema.between(1, 6))
})
type GenEvent = typeof GenEvent.Type
const Run = Schema.Struct({
  events: Schema.Array(GenEvent).pipe(Schema.maxItems(25)),
  errorRate: Schema.Literal(0, 0.2),
  bulk: Schema.Literal("off", "always")
})

let iteration = 0
const isErasure = (e: GenEvent) => e.kind === "Deletion Requested" || e.kind === "delete"
const at = (e: GenEvent) => Date.parse(`2026-05-0${e.day}T00:00:00Z`)

const toLine = (prefix: string) => (e: GenEvent) => {
  const email = `${prefix}c${e.contact}@example.com`
  const timestamp = new Date(at(e)).toISOString()
  if (e.kind === "delete") return JSON.stringify({ type: "delete", userId: `u${e.contact}`, timestamp, context: { traits: { email } } })
  return JSON.stringify({ type: "track", event: e.kind, timestamp, traits: { email }, properties: { revenue: e.day }, context: { consent: { marketing: true } } })
}

const run = (lines: ReadonlyArray<string>, tombstones: TombstoneSet, settings: Partial<DeliverySettings>) =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    return Array.from(yield* Effect.flatMap(Delivery, (d) => Stream.runCollect(d.run(Stream.fromIterable(lines)))).pipe(
      Effect.provide(deliveryLayer(sim.url, { maxAttempts: 3, outageThreshold: 1000, ...settings })),
      Effect.provide(Layer.succeed(Tombstones, tombstones))
    ))
  })

/** The model: per contact, the latest erasure that landed, and whether the contact exists. */
const check = (
  model: Map<number, { erasedAt: number | undefined; exists: boolean }>,
  events: ReadonlyArray<GenEvent>,
  results: ReadonlyArray<Result>
) => {
  // Conservation: one result per line, in input order.
  expect(results.map((r) => r.line)).toEqual(events.map((_, i) => i + 1))
  for (const r of results) {
    const e = events[r.line - 1]!
    const m = model.get(e.contact) ?? { erasedAt: undefined, exists: false }
    model.set(e.contact, m)
    const o = r.outcome
    if (m.erasedAt !== undefined && at(e) <= m.erasedAt) {
      // Law 1: older than an erasure that landed before it: dropped, naming the erasure.
      expect(o, `line ${r.line}`).toEqual({ outcome: "dropped", reason: ERASED_AFTER })
      continue
    }
    // Law 2: a newer event is never dropped for an erasure; it lands or fails.
    if (isErasure(e)) {
      expect(["erased", "not-found", "dead-lettered"], `line ${r.line}`).toContain(o.outcome)
      if (o.outcome === "dead-lettered") continue
      expect(o.outcome, `line ${r.line}: the contact ${m.exists ? "existed" : "did not exist"}`).toBe(m.exists ? "erased" : "not-found")
      m.erasedAt = Math.max(m.erasedAt ?? -Infinity, at(e))
      m.exists = false
    } else {
      expect(["delivered", "dead-lettered"], `line ${r.line}`).toContain(o.outcome)
      if (o.outcome === "delivered") m.exists = true
    }
  }
}

layer(simulatorLayer(27), { excludeTestServices: true })("erasure laws", (it) => {
  it.effect.prop(
    "law: no event older than an erasure re-creates the contact, a newer one does; one result per event; through failures, a replay of what failed, and a backfill",
    { input: Run },
    ({ input }) =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const prefix = `i${++iteration}.`
        const { events } = input
        const lines = events.map(toLine(prefix))
        const tombstones = makeTombstones(randomSecret())
        const settings = { bulk: input.bulk } as const
        const model = new Map<number, { erasedAt: number | undefined; exists: boolean }>()
        yield* sim.setFaults({ errorRate: input.errorRate })
        const first = yield* run(lines, tombstones, settings)
        check(model, events, first)
        // What failed, replayed as it was (the dead letters' events), still under faults.
        const failed = first.filter((r) => r.outcome.outcome === "dead-lettered").map((r) => r.line - 1)
        const replay = yield* run(failed.map((i) => lines[i]!), tombstones, settings)
        check(model, failed.map((i) => events[i]!), replay)
        // The whole input again, as a backfill would send it, with Mailjet answering.
        yield* sim.setFaults({})
        const backfill = yield* run(lines, tombstones, settings)
        check(model, events, backfill)
        // A backfill from a source that holds no deletion requests: only tombstones stand between
        // these events and Mailjet (in bulk, none of them is in the window's jobs).
        const updates = events.filter((e) => !isErasure(e))
        const other = yield* run(updates.map(toLine(prefix)), tombstones, settings)
        check(model, updates, other)
        // Final state: a contact exists exactly when the last of its events that landed is no erasure.
        for (const [contact, m] of model) {
          const found = yield* sim.contact(`${prefix}c${contact}@example.com`)
          expect(Option.isSome(found), `contact ${contact}`).toBe(m.exists)
        }
        // No address in a metric label.
        for (const pair of Metric.unsafeSnapshot()) {
          for (const tag of pair.metricKey.tags) expect(tag.value).not.toContain("@")
        }
      }),
    { fastCheck: { numRuns: 20 } }
  )
})
