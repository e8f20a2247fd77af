import { expect, layer } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Layer, Metric, Option, Schema, Stream } from "effect"
import * as Metrics from "../src/Delivery/Metrics.js"
import { Delivery } from "../src/Delivery/Delivery.js"
import { givenStack } from "../src/Delivery/Stack.js"
import { makeRunState } from "../src/Delivery/RunState.js"
import type { DeliverySettings } from "../src/Delivery/DeliveryConfig.js"
import { MailjetClient } from "../src/Mailjet/MailjetClient.js"
import { Mapping } from "../src/Mapping.js"
import { readDeadLetter } from "../src/Run/Ndjson.js"
import { deadLetterLine, type Result } from "../src/Domain/Outcome.js"
import { isHealthy, preflight } from "../src/Mailjet/Preflight.js"
import { Pacer } from "../src/Mailjet/Pacer.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { captureLogs, capturedLogs, clientLayer, deliveryLayer, KEY, SECRET, simulatorLayer } from "./support/layers.js"

const simulator = simulatorLayer(11)

// ---- generated inputs

const Kind = Schema.Literal("Signed Up", "Identified", "Order Completed", "Subscribed", "Unsubscribed", "Page", "Broken")
const GenEvent = Schema.Struct({
  // Few contacts, so that one contact often has several events in flight at once.
  contact: Schema.Literal(0, 1, 2, 3),
  kind: Kind,
  consent: Schema.Literal("granted", "withdrawn", "unknown"),
  value: Schema.Int.pipe(Schema.between(0, 1000))
})
type GenEvent = typeof GenEvent.Type
const Faults = Schema.Struct({
  errorRate: Schema.Literal(0, 0.1, 0.3),
  resetRate: Schema.Literal(0, 0.1)
})

/**
 * Bulk jobs' own faults, on top of the call faults: jobs that end in Error/Abort, jobs stuck past
 * their deadline (which land late, when no call fails: a late job carries the updates of events
 * that may since have been dead-lettered one by one, which the model does not follow), 429s.
 */
const JobFaults = Schema.Struct({
  jobErrorRate: Schema.Literal(0, 0.3),
  jobStuckRate: Schema.Literal(0, 0.2),
  maxRps: Schema.Literal(1000, 40)
})

const emailOf = (contact: number) => `Contact.${contact}@Example.com`

const toLine = (e: GenEvent, i: number): string => {
  if (e.kind === "Broken") return i % 2 === 0 ? "{not json" : JSON.stringify({ type: "nonsense" })
  const consent = e.consent === "granted" ? { marketing: true } : e.consent === "withdrawn" ? { marketing: false } : undefined
  const context = { traits: { email: emailOf(e.contact), first_name: `F${e.contact}` }, ...(consent ? { consent } : {}) }
  if (e.kind === "Page") return JSON.stringify({ type: "page", name: "Home", messageId: `m${i}`, context })
  if (e.kind === "Identified") return JSON.stringify({ type: "identify", messageId: `m${i}`, context })
  return JSON.stringify({
    type: "track",
    event: e.kind,
    messageId: `m${i}`,
    properties: { method: `via${e.value}`, revenue: e.value, currency: "EUR" },
    context
  })
}

type Membership = "subscribed" | "unsubscribed"
interface ContactState {
  membership: Membership | undefined
  readonly properties: Record<string, unknown>
}

/**
 * What the Default preset asks of Mailjet for one generated event, written out here rather than
 * taken from Mapping, so the model shares no code with what it checks.
 */
const expectedUpsert = (e: GenEvent) => {
  const consentAction = e.consent === "granted" ? "addforce" : e.consent === "withdrawn" ? "unsub" : "addnoforce"
  const properties: Record<string, unknown> = { first_name: `F${e.contact}` }
  switch (e.kind) {
    case "Subscribed":
      return { action: "addforce", properties }
    case "Unsubscribed":
      return { action: "unsub", properties }
    case "Identified":
      return { action: consentAction, properties }
    case "Signed Up":
      return { action: consentAction, properties: { ...properties, signup_method: `via${e.value}` } }
    case "Order Completed":
      return {
        action: consentAction,
        properties: { ...properties, last_order_value: e.value, last_order_currency: "EUR" }
      }
    default:
      return undefined
  }
}

/**
 * The action each event is sent with, in input order: what its kind and consent call for, except
 * that consent granted on an ordinary event does not re-subscribe a contact an earlier event of the
 * run unsubscribed, until a `Subscribed` (MAILJET_RESUBSCRIBE=explicit, the default).
 */
const expectedActions = (events: ReadonlyArray<GenEvent>): ReadonlyArray<string | undefined> => {
  const unsubscribed = new Set<number>()
  return events.map((e) => {
    const action = expectedUpsert(e)?.action
    if (action === "unsub") unsubscribed.add(e.contact)
    if (e.kind === "Subscribed") unsubscribed.delete(e.contact)
    else if (action === "addforce" && unsubscribed.has(e.contact)) return "addnoforce"
    return action
  })
}

/**
 * The model: each contact's delivered events applied in input order, one after another. It is
 * built from the events and their outcomes only, never from the simulator's request log, so a
 * contact whose requests reached Mailjet out of order ends in a state the model does not give.
 */
const model = (events: ReadonlyArray<GenEvent>, results: ReadonlyArray<Result>) => {
  const contacts = new Map<string, ContactState>()
  const actions = expectedActions(events)
  for (const r of results) {
    if (r.outcome.outcome !== "delivered") continue
    const e = events[r.line - 1]!
    const upsert = expectedUpsert(e)!
    const action = actions[r.line - 1]
    const email = emailOf(e.contact).toLowerCase()
    const c = contacts.get(email) ?? { membership: undefined, properties: {} }
    c.membership = action === "addforce"
      ? "subscribed"
      : action === "unsub"
      ? "unsubscribed"
      : c.membership ?? "subscribed"
    Object.assign(c.properties, upsert.properties)
    contacts.set(email, c)
  }
  return contacts
}

/** Every result the run gave, and the error it stopped with (after them), if it stopped early. */
const runUntilStopped = (lines: ReadonlyArray<string>, settings: Partial<DeliverySettings> = {}, listId = 1) =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    const results: Array<Result> = []
    const stopped = yield* Effect.flatMap(Delivery, (d) =>
      Stream.runForEach(d.run(Stream.fromIterable(lines)), (r) => Effect.sync(() => results.push(r)))).pipe(
        Effect.provide(deliveryLayer(sim.url, { concurrency: 8, ...settings }, { listId })),
        Effect.flip,
        Effect.option
      )
    return { results, stopped }
  })

/** A run that must not stop early. */
const runLines = (lines: ReadonlyArray<string>, settings: Partial<DeliverySettings> = {}, listId = 1) =>
  Effect.map(runUntilStopped(lines, settings, listId), ({ results, stopped }) => {
    expect(Option.map(stopped, (e) => e._tag)).toStrictEqual(Option.none())
    return results
  })

const count = (results: ReadonlyArray<Result>, outcome: string) =>
  results.filter((r) => r.outcome.outcome === outcome).length

layer(simulator, { excludeTestServices: true })("Delivery against the simulator", (it) => {
  /** The law both paths must keep, whatever the faults. */
  const conservation = (
    events: ReadonlyArray<GenEvent>,
    faults: Simulator.SimulatorFaults,
    settings: Partial<DeliverySettings>,
    /** A stop the run may end with. */
    mayStop: (e: { readonly _tag: string; readonly message: string }) => boolean = () => false
  ) =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        yield* sim.setFaults(faults)
        const lines = events.map(toLine)
        const { results, stopped } = yield* runUntilStopped(lines, { maxAttempts: 3, outageThreshold: 1000, ...settings })
        if (Option.isSome(stopped)) expect(mayStop(stopped.value), stopped.value.message).toBe(true)
        // Jobs that land late have landed.
        if (faults.jobStuckMs !== undefined) yield* Effect.sleep(faults.jobStuckMs)
        yield* sim.setFaults({})
        // Conservation: one result per line read, in input order.
        expect(results.map((r) => r.line)).toEqual(lines.map((_, i) => i + 1))
        // Each delivered event was sent with the action its kind and consent call for.
        const actions = expectedActions(events)
        for (const r of results) {
          if (r.outcome.outcome === "delivered") expect(r.outcome.action).toBe(actions[r.line - 1])
        }
        // Final state: each contact as its own delivered events leave it, in input order.
        const expected = model(events, results)
        if (Option.isNone(stopped)) {
          for (const [email, state] of expected) {
            const contact = Option.getOrThrow(yield* sim.contact(email))
            expect({ email, membership: contact.lists.get(1), properties: contact.properties })
              .toEqual({ email, membership: state.membership, properties: state.properties })
          }
          // No contact that no delivered event names: failed attempts changed nothing.
          expect((yield* sim.contacts).length).toBe(expected.size)
          return results
        }
        // Stopped while a bulk job ran: its events are not attempted (a rerun sends them), yet the
        // job may have landed. Each contact then holds its delivered events and the first few of
        // its not-attempted ones, applied in input order: never an older update after a newer one.
        for (let c = 0; c < 4; c++) {
          const email = emailOf(c).toLowerCase()
          const contact = yield* sim.contact(email)
          const actual = Option.map(contact, (x) => ({ membership: x.lists.get(1), properties: x.properties }))
          const pending = results.filter((r) => r.outcome.outcome === "not-attempted" && events[r.line - 1]!.contact === c)
          const candidates = pending.map((_, j) => new Set(pending.slice(0, j + 1).map((r) => r.line)))
          const states = [new Set<number>(), ...candidates].map((extra) => {
            const s = model(events, results.map((r) => (extra.has(r.line) ? { ...r, outcome: { outcome: "delivered" as const, action: "addnoforce" as const, status: 201, attempts: 1 } } : r))).get(email)
            return s === undefined ? Option.none() : Option.some({ membership: s.membership, properties: s.properties })
          })
          expect(states.some((s) => JSON.stringify(s) === JSON.stringify(actual)), `${email}: ${JSON.stringify(actual)} is none of ${JSON.stringify(states)}`).toBe(true)
        }
        return results
      })

  it.effect.prop(
    "conservation and final state: every line has one result, in order, and Mailjet holds each contact's delivered events applied in input order",
    { events: Schema.Array(GenEvent).pipe(Schema.maxItems(40)), faults: Faults },
    ({ events, faults }) => Effect.asVoid(conservation(events, faults, { bulk: "off" })),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect.prop(
    "conservation and final state with MAILJET_BULK=always, under job errors, stuck and late jobs, 429s, 5xx and resets: a job that may still land holds its contacts' later updates back",
    { events: Schema.Array(GenEvent).pipe(Schema.maxItems(40)), faults: Faults, jobs: JobFaults },
    ({ events, faults, jobs }) =>
      Effect.map(
        conservation(
          events,
          { ...faults, ...jobs, jobDurationMs: 50, ...(faults.errorRate === 0 && faults.resetRate === 0 ? { jobStuckMs: 500 } : {}) },
          { bulk: "always", bulkSize: 2, bulkJobTimeout: Duration.millis(300) },
          // Held back past its patience, a stuck job's contacts stop the run rather than be overtaken.
          (e) => jobs.jobStuckRate > 0 && e._tag === "BulkJobPending" && e.message.includes("has not ended")
        ),
        (results) => {
          // Without call faults every job ends readable or falls back: something went through bulk.
          if (faults.errorRate === 0 && faults.resetRate === 0 && jobs.jobErrorRate === 0 && jobs.jobStuckRate === 0 && jobs.maxRps === 1000) {
            const sent = results.filter((r) => r.outcome.outcome === "delivered")
            for (const r of sent) expect(r.outcome).toMatchObject({ via: "bulk" })
          }
        }
      ),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect.prop(
    "law: a bulk job that may still land holds its contacts' later updates back, so it never overwrites them",
    // Two contacts, so most windows share one with an earlier window.
    { events: Schema.Array(Schema.Struct({ ...GenEvent.fields, contact: Schema.Literal(0, 1) })).pipe(Schema.minItems(4), Schema.maxItems(16)) },
    ({ events }) =>
      Effect.asVoid(conservation(
        events,
        // Half the jobs land well after their deadline; later windows' jobs take 20 ms.
        { jobStuckRate: 0.5, jobStuckMs: 400, jobDurationMs: 20 },
        { bulk: "always", bulkSize: 2, bulkJobTimeout: Duration.millis(150) },
        (e) => e._tag === "BulkJobPending" && e.message.includes("has not ended")
      )),
    // Each run waits out its late jobs (400 ms) and the fences' patience.
    { timeout: 120_000, fastCheck: { numRuns: 12 } }
  )

  it.effect.prop(
    "law: every call to Mailjet takes a slot of the run's pacer (preflight and its pages, a replay's two reads, sends, bulk jobs and polls): as many requests as slots",
    {
      events: Schema.Array(Schema.Struct({ ...GenEvent.fields, replay: Schema.Boolean })).pipe(Schema.maxItems(30)),
      bulk: Schema.Literal("off", "always"),
      unsubscribed: Schema.Int.pipe(Schema.between(0, 3))
    },
    ({ bulk, events, unsubscribed }) =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        yield* sim.setFaults({})
        // Contacts Mailjet holds as unsubscribed: preflight pages through them (the resubscribe policy).
        yield* Effect.forEach(Array.from({ length: unsubscribed }, (_, i) => i), (i) =>
          Effect.flatMap(MailjetClient, (c) => c.manageContact({ Email: `gone${i}@example.com`, Action: "unsub" })).pipe(
            Effect.provide(clientLayer(sim.url))
          ))
        const before = (yield* sim.requests).length
        let slots = 0
        // The run's own pacer, counting its slots; no waits, so no slot is taken again (a late wake-up).
        const counting = Layer.effect(
          Pacer,
          Effect.map(Pacer.make(1e9), (p) => Pacer.of({ ...p, reserve: Effect.as(Effect.sync(() => slots++), 0) }))
        )
        const items = events.map((e, i) => ({ line: i + 1, text: toLine(e, i), replay: e.replay }))
        const results = yield* Effect.flatMap(Delivery, (d) => Stream.runCollect(d.runTagged(Stream.fromIterable(items), (m) => m))).pipe(
          Effect.provide(givenStack(Delivery.layer, {
            mailjet: { apiKey: KEY, secretKey: SECRET, listId: 1, baseUrl: sim.url, timeout: Duration.seconds(5) },
            settings: { maxRps: 1e9, bulk, bulkSize: 2, bulkJobTimeout: Duration.seconds(2) },
            pacer: counting
          }, { missing: "allow" }).pipe(Layer.merge(captureLogs)))
        )
        expect(Chunk.size(results)).toBe(events.length)
        const requests = (yield* sim.requests).slice(before)
        expect(requests.length).toBeGreaterThanOrEqual(2) // preflight's: the list and its properties
        expect(slots).toBe(requests.length)
      }),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect("a job past its deadline is watched, counted in signal_mailjet_bulk_jobs_unfinished, until it ends", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      // The job lands 600 ms late; its deadline is 150 ms.
      yield* sim.setFaults({ jobStuckRate: 1, jobStuckMs: 600, jobDurationMs: 20 })
      const unfinished = Effect.map(Metric.value(Metrics.bulkJobsUnfinished), (s) => s.value)
      const before = yield* unfinished
      const lines = ([0, 1] as const).map((c) => toLine({ contact: c, kind: "Signed Up", consent: "granted", value: c }, c))
      const { during, after } = yield* Effect.gen(function*() {
        const d = yield* Delivery
        const results = yield* Stream.runCollect(d.run(Stream.fromIterable(lines)))
        // Its events went one by one; the job may still land: watched.
        expect(Chunk.toArray(results).map((r) => r.outcome.outcome)).toEqual(["delivered", "delivered"])
        const during = yield* unfinished
        yield* Effect.sleep("100 millis").pipe(Effect.repeat({ until: () => Effect.runSync(unfinished) === before }), Effect.timeout("5 seconds"))
        return { during, after: yield* unfinished }
      }).pipe(Effect.provide(deliveryLayer(sim.url, { bulk: "always", bulkSize: 2, bulkJobTimeout: Duration.millis(150) })))
      yield* sim.setFaults({})
      expect({ during: during - before, after: after - before }).toEqual({ during: 1, after: 0 })
    }))

  /**
   * A job accepted, then every call fails (503) until each event's one-by-one send has failed, so
   * its polls pass its deadline; then the calls come back and its watcher sees it end.
   */
  const lateJob = (fate: { readonly jobErrorRate?: number }) =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      yield* sim.setFaults({ jobDurationMs: 50, ...fate })
      const lines = ([0, 1] as const).map((c) => toLine({ contact: c, kind: "Signed Up", consent: "granted", value: c }, c))
      // Mailjet refuses a local part starting with a dot: the job's error file names it.
      lines.push(lines[0]!.replace(emailOf(0), ".refused@example.com"))
      const isJob = (r: { readonly method: string; readonly path: string }) => r.method === "POST" && r.path.includes("managemanycontacts")
      const isOne = (r: { readonly method: string; readonly path: string }) => r.method === "POST" && r.path.includes("managecontact") && !r.path.includes("many")
      const run = yield* Effect.fork(runLines(lines, { bulk: "always", bulkSize: 3, bulkJobTimeout: Duration.millis(300), maxAttempts: 2, outageThreshold: 1000 }))
      yield* Effect.sleep("2 millis").pipe(Effect.repeat({ until: () => Effect.runSync(sim.requests).some((r) => isJob(r) && r.status < 300) }), Effect.timeout("10 seconds"))
      yield* sim.setFaults({ jobDurationMs: 50, ...fate, outage: true })
      yield* Effect.sleep("5 millis").pipe(Effect.repeat({ until: () => Effect.runSync(sim.requests).filter(isOne).length >= 6 }), Effect.timeout("10 seconds"))
      yield* sim.setFaults({})
      const results = yield* Fiber.join(run)
      const held = yield* Effect.forEach([emailOf(0), emailOf(1), ".refused@example.com"], (e) => Effect.map(sim.contact(e.toLowerCase()), Option.isSome))
      return { held, outcomes: results.map((r) => r.outcome) }
    })
  const failedOneByOne = { outcome: "dead-lettered", reason: expect.stringMatching(/^bulk job \d+ did not end within .*; then one by one: /) }

  it.effect("a job that lands after its deadline, while its polls and its events' one-by-one sends fail: delivered via bulk, but for the contact it refused", () =>
    Effect.map(lateJob({}), ({ held, outcomes }) => {
      expect(held).toEqual([true, true, false])
      expect(outcomes).toMatchObject([
        { outcome: "delivered", action: "addforce", via: "bulk" },
        { outcome: "delivered", action: "addforce", via: "bulk" },
        failedOneByOne
      ])
    }))

  it.effect("a job that ends in Error after its deadline, while its events' one-by-one sends fail: all dead-lettered, nothing held", () =>
    Effect.map(lateJob({ jobErrorRate: 1 }), ({ held, outcomes }) => {
      expect(held).toEqual([false, false, false])
      expect(outcomes).toMatchObject([failedOneByOne, failedOneByOne, failedOneByOne])
    }))

  it.effect("one contact's events keep input order under concurrency; other contacts run in parallel", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      yield* sim.setFaults({ latencyMs: 20 })
      // Four contacts in blocks of 20, alternating Subscribed and Unsubscribed.
      const lines = Array.from({ length: 80 }, (_, i) =>
        JSON.stringify({
          type: "track",
          event: i % 2 === 0 ? "Subscribed" : "Unsubscribed",
          messageId: `m${i}`,
          properties: {},
          traits: { email: `c${Math.floor(i / 20)}@example.com`, first_name: `n${i}` }
        }))
      const results = yield* runLines(lines, { concurrency: 16 })
      yield* sim.setFaults({})
      expect(count(results, "delivered")).toBe(80)
      const requests = yield* sim.requests
      const contactOf = (r: (typeof requests)[number]) => (r.body as { Email: string }).Email
      for (let c = 0; c < 4; c++) {
        const names = requests
          .filter((r) => contactOf(r) === `c${c}@example.com`)
          .map((r) => Number((r.body as { Name: string }).Name.slice(1)))
        expect(names).toEqual(Array.from({ length: 20 }, (_, k) => 20 * c + k))
      }
      // In parallel: the next contact's first request reaches Mailjet before c0's last one does,
      // which one contact at a time (or one lane) could not do.
      const lastOfFirst = requests.map(contactOf).lastIndexOf("c0@example.com")
      const firstOfSecond = requests.findIndex((r) => contactOf(r) === "c1@example.com")
      expect(firstOfSecond).toBeGreaterThanOrEqual(0)
      expect(firstOfSecond).toBeLessThan(lastOfFirst)
      // Each contact ends in the state of its last event (line 20c+20, odd index → Unsubscribed).
      for (let c = 0; c < 4; c++) {
        const contact = Option.getOrThrow(yield* sim.contact(`c${c}@example.com`))
        expect(contact.lists.get(1)).toBe("unsubscribed")
      }
    }))

  it.effect("a 429 storm slows every lane and burns no attempts: everything is delivered", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      yield* sim.setFaults({ maxRps: 40 })
      const lines = Array.from({ length: 60 }, (_, i) =>
        JSON.stringify({ type: "track", event: "Subscribed", traits: { email: `r${i}@example.com` } }))
      const results = yield* runLines(lines, { maxRps: 400, maxAttempts: 1, concurrency: 8 })
      yield* sim.setFaults({})
      expect(count(results, "delivered")).toBe(60)
      const limited = (yield* sim.requests).filter((r) => r.status === 429).length
      expect(limited).toBeGreaterThan(0)
    }))

  it.effect("a fatal error stops the run: later events are not attempted, and say why", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const lines = Array.from({ length: 20 }, (_, i) =>
        JSON.stringify({ type: "track", event: "Subscribed", traits: { email: `f${i}@example.com` } }))
      const { results, stopped } = yield* runUntilStopped(lines, { concurrency: 2 }, 404)
      // The run's error, once every event read has its result.
      expect(Option.map(stopped, (e) => e._tag)).toStrictEqual(Option.some("ListNotFound"))
      expect(count(results, "not-attempted")).toBe(20)
      expect(results.filter((r) => "error" in r.outcome && r.outcome.error === "ListNotFound").length).toBeGreaterThan(0)
      // In-flight events finish; nothing after the first failures is sent. Each 404 from
      // managecontact re-checks the list once (GET) before it counts as the list missing.
      const sent = yield* sim.requests
      expect(sent.filter((r) => r.path.endsWith("/managecontact")).length).toBeLessThanOrEqual(2)
      expect(sent.filter((r) => r.method === "GET" && r.path === "/v3/REST/contactslist/404").length).toBeLessThanOrEqual(2)
      expect(sent.length).toBeLessThanOrEqual(4)
    }))

  it.effect("an outage stops spending attempts: the rest are not attempted instead of dead-lettered", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      yield* sim.setFaults({ outage: true })
      const lines = Array.from({ length: 200 }, (_, i) =>
        JSON.stringify({ type: "track", event: "Subscribed", traits: { email: `o${i}@example.com` } }))
      const { results, stopped } = yield* runUntilStopped(lines, { concurrency: 4, maxAttempts: 3, outageThreshold: 10 })
      yield* sim.setFaults({})
      expect(Option.map(stopped, (e) => e._tag)).toStrictEqual(Option.some("MailjetOutage"))
      expect(results.length).toBe(200)
      expect(count(results, "not-attempted")).toBeGreaterThan(180)
      expect(count(results, "dead-lettered")).toBeLessThan(10)
      expect((yield* sim.requests).length).toBeLessThan(30)
      const reason = results.find((r) => r.outcome.outcome === "not-attempted")?.outcome
      expect(reason && "reason" in reason ? reason.reason : "").toMatch(/Mailjet looks down/)
    }))

  it.effect("a stop in the middle (shutdown): in-flight events finish, the rest have an outcome, none lost", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      yield* sim.setFaults({ latencyMs: 30 })
      const lines = Array.from({ length: 100 }, (_, i) =>
        JSON.stringify({ type: "track", event: "Subscribed", traits: { email: `s${i}@example.com` } }))
      const results = yield* Effect.gen(function*() {
        const delivery = yield* Delivery
        const state = yield* makeRunState
        const fiber = yield* Effect.fork(Stream.runCollect(delivery.run(Stream.fromIterable(lines), state)))
        yield* Effect.sleep("100 millis")
        yield* state.stop({ _tag: "Shutdown" })
        return Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      }).pipe(Effect.provide(deliveryLayer(sim.url, { concurrency: 4 })))
      yield* sim.setFaults({})
      expect(results.length).toBe(100)
      const delivered = count(results, "delivered")
      expect(delivered).toBeGreaterThan(0)
      expect(delivered + count(results, "not-attempted")).toBe(100)
      const applied = (yield* sim.requests).filter((r) => r.status === 201).length
      expect(applied).toBe(delivered)
    }))

  it.effect("drain (a shutdown request): events already sending finish, none not yet started is sent", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      yield* sim.setFaults({ latencyMs: 100 })
      const lines = Array.from({ length: 50 }, (_, i) =>
        JSON.stringify({ type: "track", event: "Subscribed", traits: { email: `d${i}@example.com` } }))
      const results = yield* Effect.gen(function*() {
        const delivery = yield* Delivery
        const state = yield* makeRunState
        const fiber = yield* Effect.fork(Stream.runCollect(delivery.run(Stream.fromIterable(lines), state)))
        yield* Effect.sleep("50 millis")
        yield* state.drain
        return Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      }).pipe(Effect.provide(deliveryLayer(sim.url, { concurrency: 4 })))
      yield* sim.setFaults({})
      expect(results.length).toBe(50)
      // The four in flight when the drain began are delivered; everything after is not attempted.
      expect(count(results, "delivered")).toBe(4)
      expect(count(results, "not-attempted")).toBe(46)
      expect((yield* sim.requests).length).toBe(4)
    }))

  it.effect.prop(
    "law: a drain leaves only the end of the input unsent, so a commit or a resume covers all that was sent",
    {
      events: Schema.Array(GenEvent).pipe(Schema.minItems(10), Schema.maxItems(40)),
      latencyMs: Schema.Literal(2, 10, 25),
      drainAfterMs: Schema.Int.pipe(Schema.between(0, 60))
    },
    ({ drainAfterMs, events, latencyMs }) =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        yield* sim.setFaults({ latencyMs })
        const results = yield* Effect.gen(function*() {
          const delivery = yield* Delivery
          const state = yield* makeRunState
          const fiber = yield* Effect.fork(Stream.runCollect(delivery.run(Stream.fromIterable(events.map(toLine)), state)))
          yield* Effect.sleep(drainAfterMs)
          yield* state.drain
          return Chunk.toReadonlyArray(yield* Fiber.join(fiber))
        }).pipe(Effect.provide(deliveryLayer(sim.url, { concurrency: 4 })))
        yield* sim.setFaults({})
        expect(results.length).toBe(events.length)
        // Few contacts: later events wait for earlier ones of theirs while other contacts go on.
        const sent = (r: Result) => "attempts" in r.outcome && (r.outcome.attempts ?? 0) > 0
        const first = results.findIndex((r) => r.outcome.outcome === "not-attempted")
        if (first >= 0) expect(results.slice(first).filter(sent).map((r) => r.line)).toEqual([])
        expect((yield* sim.requests).length).toBe(results.filter(sent).length)
      }),
    { fastCheck: { numRuns: 30 } }
  )

  it.effect("preflight reports missing and mismatched properties and creates missing ones on request", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      const mapping = Mapping.make()
      const report = yield* preflight(mapping.preset, { createMissing: false })
      expect(report.list).toMatchObject({ id: 1 })
      expect(isHealthy(report)).toBe(true)
      expect(report.datatypes.get("last_order_value")).toBe("float")
      return sim
    }).pipe(
      Effect.flatMap((sim) =>
        Effect.gen(function*() {
          // A second simulator that lacks two properties and has one with another type.
          const bare = yield* Simulator.Simulator
          const mapping = Mapping.make()
          const check = yield* preflight(mapping.preset, { createMissing: false }).pipe(
            Effect.provide(clientLayer(bare.url))
          )
          expect(check.missing.map((m) => m.name).sort()).toEqual(["last_order_currency", "signup_method"])
          expect(check.mismatched).toEqual([{ name: "last_order_value", preset: "float", mailjet: "int" }])
          expect(check.marker).toBe(false)
          const fixed = yield* preflight(mapping.preset, { createMissing: true }).pipe(Effect.provide(clientLayer(bare.url)))
          // The preset's missing properties, and the replay guard's marker.
          expect(fixed.created.map((c) => [c.name, c.datatype]).sort()).toEqual([
            ["last_order_currency", "str"],
            ["signal_last_event_at", "datetime"],
            ["signup_method", "str"]
          ])
          expect(fixed.missing).toEqual([])
          expect(fixed.marker).toBe(true)
          expect(fixed.datatypes.get("signal_last_event_at")).toBe("datetime")
          const unauthorized = yield* Effect.flip(
            preflight(mapping.preset, { createMissing: false }).pipe(Effect.provide(clientLayer(bare.url, { secret: "x" })))
          )
          expect(unauthorized._tag).toBe("Unauthorized")
          expect(sim.url).not.toBe(bare.url)
        }).pipe(
          Effect.provide(Simulator.layer({
            apiKey: KEY,
            secretKey: SECRET,
            properties: [
              { name: "first_name", datatype: "str" },
              { name: "last_name", datatype: "str" },
              { name: "last_order_value", datatype: "int" }
            ]
          }))
        )
      ),
      Effect.provide(Layer.unwrapEffect(Effect.map(Simulator.Simulator, (sim) => clientLayer(sim.url))))
    ))

  it.effect("a property Mailjet lacks: the rest is delivered, the property alone dead-lettered, and its replay sends only it", () =>
    Effect.gen(function*() {
      const bare = yield* Simulator.Simulator
      capturedLogs.length = 0
      const lines = [
        JSON.stringify({ type: "track", event: "Signed Up", properties: { method: "sso" }, traits: { email: "p@example.com" } }),
        "{oops"
      ]
      const first = yield* Effect.flatMap(Delivery, (d) => Stream.runCollect(d.run(Stream.fromIterable(lines)))).pipe(
        Effect.provide(deliveryLayer(bare.url))
      )
      const outcomes = Chunk.toReadonlyArray(first).map((r) => r.outcome)
      expect(outcomes[0]).toMatchObject({
        outcome: "delivered",
        action: "addnoforce",
        attempts: 2,
        partial: { properties: ["signup_method"], error: "PropertyMissing" }
      })
      expect(outcomes[1]).toMatchObject({ outcome: "dead-lettered", error: "MalformedEvent", attempts: 0 })
      expect(Option.getOrThrow(yield* bare.contact("p@example.com")).properties).toEqual({})
      // Each dead letter is logged as a warning, the email masked (emails are PII).
      const warnings = capturedLogs.filter((l) => l.includes("level=WARN") && l.includes("dead-lettered"))
      expect(warnings).toHaveLength(2)
      expect(warnings.filter((l) => l.includes("error=PropertyMissing") && l.includes("email=p***@example.com")))
        .toHaveLength(1)
      expect(capturedLogs.filter((l) => l.includes("p@example.com"))).toStrictEqual([])
      const deadLetters = Chunk.toReadonlyArray(first).map((r) => deadLetterLine(r, new Date())!)
      expect(JSON.parse(deadLetters[0]!)).toMatchObject({
        event: JSON.parse(lines[0]!),
        error: "PropertyMissing",
        attempts: 2,
        only: ["signup_method"]
      })

      yield* Effect.flatMap(MailjetClient, (c) => c.defineProperty("signup_method", "str")).pipe(
        Effect.provide(clientLayer(bare.url))
      )
      const before = (yield* bare.requests).length
      const replayed = yield* Effect.flatMap(Delivery, (d) =>
        Stream.runCollect(d.runTagged(
          Stream.fromIterable(deadLetters.map((text, i) => ({ line: i + 1, replay: true, ...readDeadLetter(text) }))),
          (x) => x
        ))).pipe(Effect.provide(deliveryLayer(bare.url)))
      const again = Chunk.toReadonlyArray(replayed).map(([, r]) => r.outcome)
      expect(again[0]).toMatchObject({ outcome: "delivered", action: "addnoforce", status: 201 })
      expect(again[1]).toMatchObject({ outcome: "dead-lettered", error: "MalformedEvent" })
      // It read what Mailjet holds (the list recipient, the contact's data), then sent only the property.
      const sent = (yield* bare.requests).slice(before)
      expect(sent.filter((r) => r.method === "POST").map((r) => r.body)).toStrictEqual([
        { Email: "p@example.com", Action: "addnoforce", Properties: { signup_method: "sso" } }
      ])
      expect(sent.filter((r) => r.method === "GET").map((r) => decodeURIComponent(r.path.split("?")[0]!))).toStrictEqual([
        "/v3/REST/listrecipient",
        "/v3/REST/contactdata/p@example.com"
      ])
      const contact = Option.getOrThrow(yield* bare.contact("p@example.com"))
      expect(contact.properties).toEqual({ signup_method: "sso" })
    }).pipe(
      Effect.provide(Simulator.layer({ apiKey: KEY, secretKey: SECRET, properties: [] }))
    ))
})
