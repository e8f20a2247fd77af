/**
 * The consent law of erasures, over random per-contact histories against the simulator over real
 * sockets: unsubscribes, explicit `Subscribed`, standing consent (consent granted on an ordinary
 * event), events without consent, and deletion requests, with late events, per event and in bulk
 * windows; then a later run (its own preflight, as `deliver` starts) with the whole input again and
 * newer events. Tombstones are shared by the runs, as the CLI's state file does.
 *
 * Law: an erased contact that was unsubscribed is never subscribed again by standing consent or
 * by an event without consent: a newer one re-creates it unsubscribed, and the outcome says
 * `demoted`; an explicit `Subscribed` newer than the erasure subscribes it. Mailjet's final
 * membership is the one the events that landed give in their own order, an unsubscribe surviving
 * the erasure; and no address is kept for a contact the run erased (the suppression set forgets it).
 */
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Schema, Stream } from "effect"
import { Delivery } from "../src/Delivery/Delivery.js"
import { givenStack } from "../src/Delivery/Stack.js"
import type { Result } from "../src/Domain/Outcome.js"
import { ERASED_AFTER, makeTombstones, randomSecret, type TombstoneSet, Tombstones } from "../src/Domain/Tombstones.js"
import { DefaultPreset } from "../src/Preset/Preset.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { captureLogs, KEY, SECRET, simulatorLayer } from "./support/layers.js"

const Kind = Schema.Literal("unsub", "subscribe", "standing", "plain", "erase")
type Kind = typeof Kind.Type
const GenEvent = Schema.Struct({
  contact: Schema.Literal(0, 1),
  kind: Kind,
  // Few distinct days: late events, and events at the very time of an erasure, are common.
  day: Schema.Int.pipe(Schema.between(1, 6))
})
type GenEvent = typeof GenEvent.Type
const Run = Schema.Struct({
  events: Schema.Array(GenEvent).pipe(Schema.minItems(4), Schema.maxItems(14)),
  // Newer events, sent by the later run after the input again.
  later: Schema.Array(GenEvent.pipe(Schema.omit("day"))).pipe(Schema.maxItems(6)),
  bulk: Schema.Literal("off", "always")
})

let iteration = 0
const ev = (contact: 0 | 1, kind: Kind, day: number): GenEvent => ({ contact, kind, day })
const at = (e: GenEvent) => Date.parse(`2026-05-0${e.day}T00:00:00Z`)

const toLine = (prefix: string) => (e: GenEvent) => {
  const email = `${prefix}c${e.contact}@example.com`
  const timestamp = new Date(at(e)).toISOString()
  const base = { type: "track", timestamp, traits: { email } }
  switch (e.kind) {
    case "erase":
      return JSON.stringify({ ...base, event: "Deletion Requested" })
    case "unsub":
      return JSON.stringify({ ...base, event: "Unsubscribed" })
    case "subscribe":
      return JSON.stringify({ ...base, event: "Subscribed" })
    case "standing":
      return JSON.stringify({ ...base, event: "Signed Up", context: { consent: { marketing: true } } })
    case "plain":
      return JSON.stringify({ ...base, event: "Order Completed", properties: { revenue: e.day } })
  }
}

/** A run as `deliver` makes one: preflight reads who Mailjet holds as unsubscribed. */
const run = (lines: ReadonlyArray<string>, tombstones: TombstoneSet, bulk: "off" | "always") =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    const stack = givenStack(Delivery.layer, {
      mailjet: { apiKey: KEY, secretKey: SECRET, listId: 1, baseUrl: sim.url, timeout: Duration.seconds(5) },
      preset: DefaultPreset,
      settings: { maxRps: 10_000, retryBase: Duration.millis(5), retryMax: Duration.millis(50), bulk }
    }, { missing: "allow" }).pipe(Layer.merge(captureLogs))
    return Array.from(yield* Effect.flatMap(Delivery, (d) => Stream.runCollect(d.run(Stream.fromIterable(lines)))).pipe(
      Effect.provide(stack),
      Effect.provide(Layer.succeed(Tombstones, tombstones))
    ))
  })

interface Model {
  erasedAt: number | undefined
  exists: boolean
  membership: "subscribed" | "unsubscribed" | undefined
  /** Unsubscribed, by an event that landed, and no explicit `Subscribed` since: erasures keep it. */
  suppressed: boolean
}

/**
 * Per event, the model is exact. In a bulk window, suppressions are decided for the whole window
 * before its erasures are sent, so a late unsubscribe dropped for an erasure earlier in the same
 * window may still count: a contact may only ever be held more suppressed than its events say, and
 * the model follows what the outcome's `demoted` shows.
 */
const check = (model: Map<number, Model>, events: ReadonlyArray<GenEvent>, results: ReadonlyArray<Result>, exact: boolean) => {
  expect(results.map((r) => r.line)).toEqual(events.map((_, i) => i + 1))
  for (const r of results) {
    const e = events[r.line - 1]!
    const m = model.get(e.contact) ?? { erasedAt: undefined, exists: false, membership: undefined, suppressed: false }
    model.set(e.contact, m)
    const o = r.outcome
    const where = `line ${r.line} (${e.kind}, day ${e.day}, contact ${e.contact})`
    if (m.erasedAt !== undefined && at(e) <= m.erasedAt) {
      expect(o, where).toEqual({ outcome: "dropped", reason: ERASED_AFTER })
      continue
    }
    if (e.kind === "erase") {
      expect(o.outcome, where).toBe(m.exists ? "erased" : "not-found")
      m.erasedAt = Math.max(m.erasedAt ?? -Infinity, at(e))
      m.exists = false
      m.membership = undefined
      continue
    }
    expect(o.outcome, where).toBe("delivered")
    if (o.outcome !== "delivered") continue
    m.exists = true
    if (e.kind === "unsub") {
      m.membership = "unsubscribed"
      m.suppressed = true
    } else if (e.kind === "subscribe") {
      // Explicit consent subscribes, erased or not.
      expect(o.action, where).toBe("addforce")
      m.membership = "subscribed"
      m.suppressed = false
    } else if (m.suppressed) {
      // The law: standing consent, or none, never subscribes a contact unsubscribed (before its erasure, too).
      expect(o.action, where).not.toBe("addforce")
      if (e.kind === "standing") expect(o.demoted, where).toBeDefined()
      m.membership = "unsubscribed"
    } else {
      if (exact || o.demoted === undefined) {
        expect(o.demoted, where).toBeUndefined()
        m.membership = e.kind === "standing" ? "subscribed" : m.membership ?? "subscribed"
      } else {
        expect(o.action, where).not.toBe("addforce")
        m.suppressed = true
        m.membership = m.membership ?? "unsubscribed"
      }
    }
  }
}

/** One history through two runs, checked against the model. */
const law = (input: typeof Run.Type) =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    yield* sim.reset
    const prefix = `k${++iteration}.`
    const lines = input.events.map(toLine(prefix))
    const tombstones = makeTombstones(randomSecret())
    const model = new Map<number, Model>()
    const exact = input.bulk === "off"
    check(model, input.events, yield* run(lines, tombstones, input.bulk), exact)
    // A later run: the input again (a backfill), then newer events (day 9), with preflight's
    // suppressions; last, for each contact an event without consent, then standing consent.
    const tail = (["plain", "standing"] as const).flatMap((kind) => [{ contact: 0, kind }, { contact: 1, kind }] as const)
    const later = [...input.later, ...tail].map((e) => ({ ...e, day: 9 }))
    const again = [...input.events, ...later]
    check(model, again, yield* run(again.map(toLine(prefix)), tombstones, input.bulk), exact)
    // Final state: Mailjet's membership is the model's, an unsubscribe surviving the erasure.
    for (const [contact, m] of model) {
      const found = yield* sim.contact(`${prefix}c${contact}@example.com`)
      const membership = Option.flatMap(found, (c) => Option.fromNullable(c.lists.get(1)))
      expect(Option.isSome(found), `contact ${contact} exists`).toBe(m.exists)
      if (m.exists) expect(Option.getOrUndefined(membership), `contact ${contact}'s membership`).toBe(m.membership)
    }
  })

/** Histories that broke the law while it was built: each kept as a case of its own. */
const cases: ReadonlyArray<typeof Run.Type> = [
  // Unsubscribed, erased, then standing consent: demoted, and re-created unsubscribed.
  { events: [ev(1, "unsub", 1), ev(1, "erase", 1), ev(1, "standing", 2), ev(1, "plain", 3)], later: [], bulk: "off" },
  // In one window, an unsubscribe older than the erasure before it.
  { events: [ev(0, "unsub", 1), ev(1, "erase", 2), ev(1, "unsub", 1), ev(0, "unsub", 1)], later: [], bulk: "always" },
  // In one window, a late unsubscribe after the erasure replaced the earlier one's line: still counted.
  { events: [ev(1, "unsub", 1), ev(1, "erase", 3), ev(1, "unsub", 2), ev(0, "plain", 1)], later: [], bulk: "always" },
  // In one window, a Subscribed older than the erasure before it lifts nothing.
  { events: [ev(1, "unsub", 1), ev(1, "erase", 3), ev(1, "subscribe", 2), ev(0, "plain", 1)], later: [], bulk: "always" },
  // A Subscribed newer than the erasure subscribes, and standing consent after it too.
  { events: [ev(0, "unsub", 1), ev(0, "erase", 1), ev(0, "subscribe", 2), ev(0, "standing", 3)], later: [{ contact: 0, kind: "erase" }], bulk: "off" }
]

layer(simulatorLayer(2727), { excludeTestServices: true })("erasure consent law", (it) => {
  it.effect.prop(
    "law: an erased contact that was unsubscribed is never subscribed again by standing consent or an event without consent; an explicit Subscribed does",
    { input: Run },
    ({ input }) => law(input),
    { timeout: 240_000, fastCheck: { numRuns: 30 } }
  )
  it.effect("the law, on the histories that broke it while it was built", () => Effect.forEach(cases, law, { discard: true }), 60_000)
})
