/**
 * A large list's view of who is unsubscribed is read in the background (Mailjet/SuppressionSnapshot):
 * what is learnt meanwhile is not undone by the older view, and events held back to ask Mailjet
 * about their contact keep their order and their outcomes. Against the simulator, seeded with a
 * list large enough that its view is not read before the first send.
 */
import { expect, layer } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Schema, Stream } from "effect"
import { Delivery } from "../src/Delivery/Delivery.js"
import { givenStack } from "../src/Delivery/Stack.js"
import { Pacer } from "../src/Mailjet/Pacer.js"
import { bring, type Kept, SuppressionSnapshot } from "../src/Mailjet/SuppressionSnapshot.js"
import { DefaultPreset } from "../src/Preset/Preset.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { Preflight } from "../src/Mailjet/Preflight.js"
import { makeSuppressions, Suppressions } from "../src/Suppressions.js"
import { captureLogs, clientLayer, KEY, SECRET, simulatorOptions } from "./support/layers.js"

const CONTACTS = 12_000
const RATIO = 0.01
const seeded = Simulator.seededEmail
// With 1% unsubscribed, the 100th, 200th… are: the rest are subscribed.
for (const n of [100, 200, 300]) if (!Simulator.seededUnsubscribed(n, RATIO)) throw new Error(`seed ${n} is not unsubscribed`)

layer(Simulator.layer(simulatorOptions({ seed: 26, seedContacts: { count: CONTACTS, unsubscribedRatio: RATIO }, faults: { latencyMs: 2 } })), {
  excludeTestServices: true
})("a large list's view, read in the background", (it) => {
  it.effect("a suppression learnt, or lifted, while the view is read is not undone by it; the view kept leaves the lifted out", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const saves: Array<Kept> = []
      // A view kept by an earlier run: seed-3 was unsubscribed then (now subscribed), seed-100 still is.
      const kept: Kept = { takenAt: 0, entries: [{ id: 3, email: seeded(3), at: "" }, { id: 100, email: seeded(100), at: "" }] }
      const store = SuppressionSnapshot.of({
        load: Effect.succeed(Option.some(kept)),
        save: (k) => Effect.sync(() => saves.push(k)),
        trustFor: Duration.zero
      })
      const set = makeSuppressions()
      yield* Effect.scoped(Effect.gen(function*() {
        const brought = yield* bring(set, { subscribers: undefined, retrying: (e) => e })
        // Too many addresses to read before the first send: the rest comes in the background.
        expect(brought.pending).toBe(CONTACTS * RATIO - 1)
        expect(set.get(seeded(3))).toBeUndefined()
        expect(yield* Effect.either(set.whole.pipe(Effect.timeout("1 millis")))).toMatchObject({ _tag: "Left" })
        // Meanwhile: a callback says seed-3 unsubscribed again; the run's explicit Subscribed lifts seed-200.
        set.learn(seeded(3), { reason: "unsubscribed in Mailjet (callback)" })
        set.lift(seeded(200))
        yield* set.whole
      }).pipe(
        Effect.provideService(SuppressionSnapshot, store),
        Effect.provide(Layer.merge(clientLayer(sim.url), Layer.effect(Pacer, Pacer.make(1_000))))
      ))
      expect(set.get(seeded(3))?.reason).toBe("unsubscribed in Mailjet (callback)")
      expect(set.get(seeded(200))).toBeUndefined()
      expect(set.get(seeded(100))?.reason).toMatch(/^unsubscribed in Mailjet at /)
      expect(set.get(seeded(300))?.reason).toMatch(/^unsubscribed in Mailjet at /)
      expect(set.size()).toBe(CONTACTS * RATIO - 1 + 1)
      const last = saves.at(-1)!
      const emails = new Set(last.entries.map((e) => e.email))
      expect([emails.has(seeded(300)), emails.has(seeded(100)), emails.has(seeded(200)), emails.has(seeded(3))]).toStrictEqual([true, true, false, false])
    }))

  it.effect("consent unchanged on the large list, cold and warm: the unsubscribed's Order Completed with consent is demoted, a new contact's Signed Up is addforce", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      // The state a run keeps (Run/SnapshotFile), in memory.
      let kept: Option.Option<Kept> = Option.none()
      const store = SuppressionSnapshot.of({
        load: Effect.sync(() => kept),
        save: (k) => Effect.sync(() => (kept = Option.some(k))),
        trustFor: Duration.zero
      })
      const order = (email: string, i: number) =>
        JSON.stringify({ type: "track", event: "Order Completed", messageId: `o${i}`, context: { traits: { email }, consent: { marketing: true } }, properties: { revenue: 1, currency: "EUR" } })
      const signUp = (email: string) =>
        JSON.stringify({ type: "track", event: "Signed Up", messageId: `s-${email}`, context: { traits: { email }, consent: { marketing: true } } })
      const runOnce = (lines: ReadonlyArray<string>, waitWhole: boolean) =>
        Effect.gen(function*() {
          // Preflight's report is in the context, though the stack's type keeps only what the engine reads.
          const report = Option.getOrThrow(yield* Effect.serviceOption(Preflight))
          const results = yield* Effect.flatMap(Delivery, (d) => Stream.runCollect(d.run(Stream.fromIterable(lines))))
          if (waitWhole) yield* Effect.flatMap(Suppressions, (s) => s.whole)
          return { pending: report.pending, unread: report.unread, results: Array.from(results, (r) => r.outcome) }
        }).pipe(
          Effect.provide(givenStack(Delivery.layer, {
            mailjet: { apiKey: KEY, secretKey: SECRET, listId: 1, baseUrl: sim.url, timeout: Duration.seconds(5) },
            preset: DefaultPreset,
            settings: { maxRps: 1_000, retryBase: Duration.millis(5), retryMax: Duration.millis(50) }
          }, { missing: "allow" }).pipe(Layer.provide(Layer.succeed(SuppressionSnapshot, store)))),
          Effect.provide(captureLogs)
        )
      const lines = [order(seeded(300), 1), signUp("fresh-1@example.com"), order(seeded(4), 2)]
      const cold = yield* runOnce(lines, true)
      // Cold on a large list: even who is unsubscribed is read behind the sends.
      expect([cold.unread, cold.pending]).toStrictEqual([true, 0])
      const expected = [
        { outcome: "delivered", action: "addnoforce", demoted: expect.stringMatching(/^unsubscribed in Mailjet at /) },
        { outcome: "delivered", action: "addforce" },
        { outcome: "delivered", action: "addforce" }
      ]
      expect(cold.results).toMatchObject(expected)
      expect(cold.results[1]!).not.toHaveProperty("demoted")
      expect(Option.map(kept, (k) => k.entries.length)).toStrictEqual(Option.some(CONTACTS * RATIO))
      // Warm: the addresses are kept, so the view is whole before the first send (nothing pending).
      const warm = yield* runOnce([order(seeded(400), 3), signUp("fresh-2@example.com")], false)
      expect([warm.unread, warm.pending]).toStrictEqual([undefined, 0])
      expect(warm.results).toMatchObject([expected[0], expected[1]])
      expect((yield* sim.contact(seeded(400))).pipe(Option.map((c) => c.lists.get(1)))).toStrictEqual(Option.some("unsubscribed"))
    }))

  // Five contacts: two unsubscribed in Mailjet, two subscribed, one new.
  const CONTACT_EMAILS = [seeded(100), seeded(200), seeded(1), seeded(2), "new@example.com"] as const
  const initial = (i: number): "subscribed" | "unsubscribed" | undefined => (i < 2 ? "unsubscribed" : i < 4 ? "subscribed" : undefined)
  const Step = Schema.Struct({
    contact: Schema.Literal(0, 1, 2, 3, 4),
    kind: Schema.Literal("Signed Up", "Order Completed", "Identified", "Subscribed", "Unsubscribed"),
    consent: Schema.Literal("granted", "withdrawn", "unknown")
  })
  type Step = typeof Step.Type
  const Steps = Schema.Array(Step).pipe(Schema.minItems(1), Schema.maxItems(10))

  /** What Mailjet holds after a contact's events, in their own order (the consent guarantee's model). */
  const model = (steps: ReadonlyArray<Step>, contact: number) => {
    let state = initial(contact)
    for (const s of steps) {
      if (s.contact !== contact) continue
      const action = s.kind === "Subscribed" ? "explicit" : s.kind === "Unsubscribed" || s.consent === "withdrawn" ? "unsub" : s.consent === "granted" ? "addforce" : "addnoforce"
      if (action === "explicit") state = "subscribed"
      else if (action === "unsub") state = "unsubscribed"
      else if (state === undefined) state = "subscribed"
      else if (action === "addforce" && state !== "unsubscribed") state = "subscribed"
    }
    return state
  }

  const line = (s: Step, i: number) =>
    JSON.stringify({
      type: "track",
      event: s.kind,
      messageId: `m${i}`,
      context: { traits: { email: CONTACT_EMAILS[s.contact] }, ...(s.consent === "unknown" ? {} : { consent: { marketing: s.consent === "granted" } }) },
      ...(s.kind === "Order Completed" ? { properties: { revenue: 1, currency: "EUR" } } : {})
    })

  let asked = 0
  it.effect.prop(
    "law: events held back while the view is read (asking Mailjet about their contact) each get one outcome, in input order, and leave each contact as its own events in order say",
    [Steps],
    ([steps]) =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const stack = givenStack(Delivery.layer, {
          mailjet: { apiKey: KEY, secretKey: SECRET, listId: 1, baseUrl: sim.url, timeout: Duration.seconds(5) },
          preset: DefaultPreset,
          settings: { maxRps: 300, retryBase: Duration.millis(5), retryMax: Duration.millis(50) }
        }, { missing: "allow" })
        const results = yield* Effect.flatMap(Delivery, (d) => Stream.runCollect(d.run(Stream.fromIterable(steps.map(line))))).pipe(
          Effect.provide(stack),
          Effect.provide(captureLogs)
        )
        // Conservation: one outcome each, in input order, every one delivered.
        expect(Array.from(results, (r) => [r.line, r.outcome.outcome])).toStrictEqual(steps.map((_, i) => [i + 1, "delivered"]))
        // Per-contact order: Mailjet holds what each contact's events give, in their order.
        const contacts = yield* sim.contacts
        for (let c = 0; c < CONTACT_EMAILS.length; c++) {
          const held = contacts.find((x) => x.email === CONTACT_EMAILS[c])?.lists.get(1)
          expect([CONTACT_EMAILS[c], held]).toStrictEqual([CONTACT_EMAILS[c], model(steps, c)])
        }
        asked += (yield* sim.requests).filter((r) => r.path.includes("ContactEmail=")).length
      }),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect("the law above did hold events back: they asked Mailjet about their contacts", () =>
    Effect.sync(() => {
      expect(asked).toBeGreaterThan(0)
    }))
})
