/**
 * The consent loop's parts outside Kafka (issue: Mailjet's own unsubscribes flow back): the
 * simulator's recipient actions and event callbacks with Mailjet's retry rule, the webhook body
 * reader, suppressions read just before sending, `check --register-webhook` and
 * `deliver --feedback`. The worker side is in WorkerSuppressions.test.ts.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, Schema, Stream } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Os from "node:os"
import * as Path from "node:path"
import { Delivery } from "../src/Delivery/Delivery.js"
import { readCallback } from "../src/Kafka/WebhookBody.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { Suppressions } from "../src/Suppressions.js"
import { runBin } from "./support/bin.js"
import { deliveryLayer, KEY, SECRET, simulatorOptions } from "./support/layers.js"

const auth = `Basic ${Buffer.from(`${KEY}:${SECRET}`).toString("base64")}`

const call = (sim: Simulator.SimulatorService, method: string, path: string, body?: unknown) =>
  Effect.promise(async () => {
    const res = await fetch(`${sim.url}${path}`, {
      method,
      headers: { authorization: auth, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const text = await res.text()
    return { status: res.status, json: text === "" ? undefined : JSON.parse(text) as { Data: Array<Record<string, unknown>> } }
  })

/** A callback receiver: answers each post with the next status of `statuses` (then 200), and keeps them. */
const receiver = (statuses: ReadonlyArray<number> = []) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ url: string; posts: Array<{ auth: string | undefined; body: unknown }>; server: Http.Server }>((resolve) => {
        const posts: Array<{ auth: string | undefined; body: unknown }> = []
        const queue = [...statuses]
        const server = Http.createServer((req, res) => {
          let text = ""
          req.on("data", (d: Buffer) => (text += d.toString()))
          req.on("end", () => {
            posts.push({ auth: req.headers.authorization, body: JSON.parse(text) })
            res.statusCode = queue.shift() ?? 200
            res.end()
          })
        })
        server.listen(0, "127.0.0.1", () => {
          const port = (server.address() as { port: number }).port
          resolve({ url: `http://hook:pa%24s@127.0.0.1:${port}/mailjet/events`, posts, server })
        })
      })
    ),
    (r) => Effect.promise(() => close(r.server))
  )

const close = (server: Http.Server) =>
  new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })

const waitUntil = (what: string, check: () => boolean, ms = 5_000) =>
  Effect.promise(async () => {
    const started = Date.now()
    while (!check()) {
      if (Date.now() - started > ms) throw new Error(`timed out waiting for ${what}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  })

const options = simulatorOptions({ seed: 5, callbacks: { retryEveryMs: 100, retryForMs: 1_000 } })

const signUp = (sim: Simulator.SimulatorService, email: string) =>
  call(sim, "POST", "/v3/REST/contactslist/1/managecontact", { Email: email, Action: "addforce" })

layer(Simulator.layer(options), { excludeTestServices: true })("simulator: the recipient acts, Mailjet calls back", (it) => {
  it.scoped("eventcallbackurl: one per event type; the recipient's unsubscribe posts Mailjet's event with Basic auth from the URL", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const hook = yield* receiver()
      const created = yield* call(sim, "POST", "/v3/REST/eventcallbackurl", { EventType: "unsub", Url: hook.url, Version: 1 })
      expect(created.status).toBe(201)
      expect(created.json!.Data[0]).toMatchObject({ EventType: "unsub", Url: hook.url, IsBackup: false, Status: "alive", Version: 1 })
      expect((yield* call(sim, "POST", "/v3/REST/eventcallbackurl", { EventType: "unsub", Url: hook.url })).status).toBe(400)
      expect((yield* call(sim, "GET", "/v3/REST/eventcallbackurl")).json!.Data).toHaveLength(1)

      yield* signUp(sim, "ann@example.com")
      expect((yield* call(sim, "POST", "/_sim/recipient/unsub", { Email: "nobody@example.com" })).status).toBe(404)
      expect((yield* call(sim, "POST", "/_sim/recipient/forward", { Email: "ann@example.com" })).status).toBe(404)
      const unsub = yield* call(sim, "POST", "/_sim/recipient/unsub", { Email: "ann@example.com" })
      expect(unsub.status).toBe(200)
      expect(yield* Effect.map(sim.contact("ann@example.com"), (c) => c._tag === "Some" && c.value.lists.get(1))).toBe("unsubscribed")
      yield* waitUntil("the callback", () => hook.posts.length === 1)
      expect(hook.posts[0]!.auth).toBe(`Basic ${Buffer.from("hook:pa$s").toString("base64")}`)
      expect(hook.posts[0]!.body).toMatchObject({ event: "unsub", email: "ann@example.com", mj_list_id: 1, time: expect.any(Number) })
      // No callback URL for spam: the complaint changes the contact, nothing is posted.
      yield* signUp(sim, "bob@example.com")
      expect((yield* call(sim, "POST", "/_sim/recipient/spam", { Email: "bob@example.com" })).status).toBe(200)
      yield* Effect.sleep("200 millis")
      expect(hook.posts).toHaveLength(1)
      expect(yield* sim.callbackStats).toMatchObject({ pending: 0, delivered: 1 })
      // Without the simulator's credentials the recipient endpoint is closed.
      const anonymous = yield* Effect.promise(() => fetch(`${sim.url}/_sim/recipient/unsub`, { method: "POST", body: "{}" }))
      expect(anonymous.status).toBe(401)
      const row = created.json!.Data[0]!
      expect((yield* call(sim, "DELETE", `/v3/REST/eventcallbackurl/${row["ID"]}`)).status).toBe(204)
    }))

  it.scoped("Version 2 groups the events of one second in an array; a non-200 is retried every retryEvery until retryFor, then given up", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      // Refused twice, then taken.
      const hook = yield* receiver([503, 500])
      for (const type of ["bounce", "blocked"]) {
        expect((yield* call(sim, "POST", "/v3/REST/eventcallbackurl", { EventType: type, Url: hook.url, Version: 2 })).status).toBe(201)
      }
      for (const email of ["c@example.com", "d@example.com"]) yield* signUp(sim, email)
      const before = yield* sim.callbackStats
      // Both in the same second (the simulator's clock is the wall clock: wait for a fresh second).
      yield* Effect.sleep(`${1000 - (Date.now() % 1000) + 20} millis`)
      yield* call(sim, "POST", "/_sim/recipient/bounce", { Email: "c@example.com" })
      yield* call(sim, "POST", "/_sim/recipient/bounce", { Email: "d@example.com" })
      yield* waitUntil("three posts of the one group", () => hook.posts.length === 3)
      const group = hook.posts.map((p) => p.body)
      expect(group[0]).toStrictEqual(group[2])
      expect(group[2]).toMatchObject([
        { event: "bounce", email: "c@example.com", hard_bounce: true },
        { event: "bounce", email: "d@example.com", hard_bounce: true }
      ])
      // The receiver sees the body before the simulator reads its 200: wait for the simulator's count.
      yield* waitUntil("delivered", () => Effect.runSync(sim.callbackStats).delivered === before.delivered + 1)
      expect(yield* sim.callbackStats).toMatchObject({ pending: 0, delivered: before.delivered + 1 })

      // Never answered: retried until the window closes, then abandoned.
      yield* Effect.promise(() => close(hook.server))
      yield* signUp(sim, "e@example.com")
      yield* call(sim, "POST", "/_sim/recipient/blocked", { Email: "e@example.com" })
      yield* Effect.sleep("300 millis")
      expect((yield* sim.callbackStats).pending).toBe(1)
      yield* waitUntil("abandoned", () => Effect.runSync(sim.callbackStats).abandoned === before.abandoned + 1, 5_000)
      expect((yield* sim.callbackStats).pending).toBe(0)
    }))
})

describe("webhook bodies", () => {
  const now = new Date("2026-12-05T12:00:00Z")
  it("reads unsub, spam, hard bounces and blocked; ignores the rest; refuses only what is not JSON, without echoing it", () => {
    const learnt = readCallback(JSON.stringify([
      { event: "unsub", time: 1764400000, email: " Ann@Example.com ", mj_list_id: 1 },
      { event: "open", time: 1764400000, email: "o@example.com" },
      { event: "bounce", time: 1764400000, email: "soft@example.com", hard_bounce: false },
      { event: "bounce", time: 1764400001, email: "hard@example.com", hard_bounce: true },
      { event: "spam", time: 1764400002, email: "s@example.com" },
      { event: "blocked", time: 1764400003, email: "b@example.com" },
      // An unsubscribe from another list of the account.
      { event: "unsub", time: 1764400004, email: "other@example.com", mj_list_id: "2" }
    ]), { listId: 1, now })
    expect(Either.getOrThrow(learnt).learnt.map((l) => [l.email, l.event, l.reason])).toStrictEqual([
      ["ann@example.com", "unsub", "unsubscribed in Mailjet at 2025-11-29T07:06:40Z"],
      ["hard@example.com", "bounce", "hard-bounced in Mailjet at 2025-11-29T07:06:41Z"],
      ["s@example.com", "spam", "marked as spam in Mailjet at 2025-11-29T07:06:42Z"],
      ["b@example.com", "blocked", "blocked by Mailjet at 2025-11-29T07:06:43Z"]
    ])
    for (const bad of ["", "{\"event\":\"unsub\",\"email\":\"secret@x.com\""]) {
      const read = readCallback(bad, { listId: 1, now })
      expect(Either.isLeft(read)).toBe(true)
      if (Either.isLeft(read)) expect(read.left).not.toContain("secret")
    }
    // Issue 29: JSON without a usable event was refused whole, and Mailjet retried it for 24 h.
    // Now it is read: nothing to suppress, and what could not be read is counted as skipped.
    for (const [json, skipped] of [["null", 1], ["{}", 1], ["[]", 0], ["[1]", 1], ["{\"event\":\"unsub\",\"time\":1}", 1]] as const) {
      const read = Either.getOrThrow(readCallback(json, { listId: 1, now }))
      expect([read.learnt.length, read.skipped.length], json).toStrictEqual([0, skipped])
    }
  })

  const Event = Schema.Struct({
    event: Schema.Literal("unsub", "spam", "bounce", "blocked", "open", "click"),
    // Addresses as Mailjet may spell them, and some that are none.
    email: Schema.optional(Schema.Union(Schema.Literal("a@example.com", " B@Example.COM ", "C@EXAMPLE.com", "no-at", ""), Schema.String)),
    time: Schema.optional(Schema.Number),
    hard_bounce: Schema.optional(Schema.Boolean)
  })
  it.prop(
    "law: any body ends as suppressions with a normalised email and a real time, or as a reason; never a throw",
    [Schema.Union(Schema.String, Event, Schema.Array(Event))],
    ([body]) => {
      const read = readCallback(typeof body === "string" ? body : JSON.stringify(body), { listId: 1, now })
      if (Either.isLeft(read)) {
        expect(read.left).toMatch(/^not JSON/)
        return
      }
      for (const l of read.right.learnt) {
        expect(l.email).toBe(l.email.trim().toLowerCase())
        expect(l.email).toContain("@")
        expect(Number.isNaN(Date.parse(l.at))).toBe(false)
        expect(["unsub", "spam", "bounce", "blocked"]).toContain(l.event)
      }
    },
    { fastCheck: { numRuns: 300 } }
  )
})

layer(Simulator.layer({ ...options, faults: { latencyMs: 150 } }), { excludeTestServices: true })(
  "delivery: suppressions are read just before sending",
  (it) => {
    it.effect("a suppression learnt while an event waits behind its contact's earlier one demotes it", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const line = (event: string) =>
          JSON.stringify({ type: "track", event, context: { traits: { email: "w@example.com" }, consent: { marketing: true } } })
        const results = yield* Effect.gen(function*() {
          const delivery = yield* Delivery
          const suppressions = yield* Suppressions
          // The first takes 150 ms at Mailjet; meanwhile Mailjet reports the recipient's unsubscribe.
          const running = yield* Effect.fork(Stream.runCollect(delivery.run(Stream.make(line("Signed Up"), line("Order Completed")))))
          yield* Effect.sleep("50 millis")
          suppressions.learn("w@example.com", { reason: "unsubscribed in Mailjet at 2026-11-29T10:00:00Z" })
          return Array.from(yield* running.await.pipe(Effect.flatten))
        }).pipe(Effect.provide(deliveryLayer(sim.url)))
        expect(results.map((r) => r.outcome.outcome === "delivered" ? [r.outcome.action, r.outcome.demoted] : r.outcome.outcome))
          .toStrictEqual([["addforce", undefined], ["addnoforce", "unsubscribed in Mailjet at 2026-11-29T10:00:00Z"]])
      }))
  }
)

layer(Simulator.layer(options), { excludeTestServices: true })("CLI: register the webhook, feed suppressions back", (it) => {
  const env = (sim: Simulator.SimulatorService) => ({
    MAILJET_API_KEY: KEY,
    MAILJET_SECRET_KEY: SECRET,
    MAILJET_LIST_ID: "1",
    MAILJET_BASE_URL: sim.url
  })

  it.effect("check --register-webhook creates the four callbacks, then finds them unchanged; never prints the password", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      const url = "https://mailjet:hook-secret-55@worker.example.com/mailjet/events"
      const first = yield* Effect.promise(() => runBin(["check", "--register-webhook", url], env(sim)))
      expect(first.stdout).toMatch(/event callback unsub \(\d+\): (created|updated)/)
      expect(first.stdout).toMatch(/event callback blocked \(\d+\): (created|updated)/)
      const again = yield* Effect.promise(() => runBin(["check", "--register-webhook", url], env(sim)))
      expect(again.stdout.match(/: unchanged, to https:\/\/\*\*\*@worker\.example\.com\/mailjet\/events/g)).toHaveLength(4)
      expect(first.stdout + first.stderr + again.stdout + again.stderr).not.toContain("hook-secret-55")
      const rows = (yield* call(sim, "GET", "/v3/REST/eventcallbackurl")).json!.Data
      for (const type of ["unsub", "spam", "bounce", "blocked"]) {
        expect(rows.filter((r) => r["EventType"] === type && r["IsBackup"] === false).map((r) => r["Url"])).toStrictEqual([url])
      }
      const noCredentials = yield* Effect.promise(() =>
        runBin(["check", "--register-webhook", "https://worker.example.com/mailjet/events"], env(sim))
      )
      expect(noCredentials.code).toBe(2)
      expect(noCredentials.stderr).toMatch(/MAILJET_WEBHOOK_PASSWORD/)
    }))

  it.effect("deliver --feedback writes Mailjet's unsubscribed contacts and the run's own unsubscribes as Signal events", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      yield* signUp(sim, "kim@example.com")
      expect((yield* call(sim, "POST", "/_sim/recipient/unsub", { Email: "kim@example.com" })).status).toBe(200)
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "feedback-"))
      const file = Path.join(dir, "feedback.ndjson")
      const events = [
        { type: "track", event: "Order Completed", context: { traits: { email: "kim@example.com" }, consent: { marketing: true } } },
        { type: "track", event: "Unsubscribed", context: { traits: { email: "lou@example.com" } } }
      ].map((e) => JSON.stringify(e)).join("\n")
      const result = yield* Effect.promise(() => runBin(["deliver", "--feedback", file], env(sim), `${events}\n`))
      expect(result.code).toBe(0)
      const lines = Fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, any>)
      expect(lines.map((l) => [l["event"], l["traits"]["email"], l["properties"]["reason"]])).toStrictEqual([
        ["Mailjet Unsubscribed", "kim@example.com", "unsub"],
        ["Mailjet Unsubscribed", "lou@example.com", "unsub"]
      ])
      expect(lines[0]!["properties"]["detail"]).toMatch(/^unsubscribed in Mailjet at /)
      expect(lines[1]!["properties"]["detail"]).toBe("unsubscribed by the event on line 2")
      expect(lines[0]!["messageId"]).not.toContain("kim")
      Fs.rmSync(dir, { recursive: true })
    }))
})

// A list too large to read before the first send: its unsubscribed contacts are read in the background.
const LARGE = 12_000
layer(Simulator.layer(simulatorOptions({ seed: 27, seedContacts: { count: LARGE, unsubscribedRatio: 0.01 } })), { excludeTestServices: true })(
  "CLI: feed suppressions back from a large list",
  (it) => {
    it.effect("deliver --feedback on a large list's first run writes every unsubscribed contact of the list, read after the events were sent", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "feedback-large-"))
        const file = Path.join(dir, "feedback.ndjson")
        const events = [
          { type: "track", event: "Signed Up", context: { traits: { email: "new@example.com" }, consent: { marketing: true } } },
          { type: "track", event: "Unsubscribed", context: { traits: { email: "lou@example.com" } } }
        ].map((e) => JSON.stringify(e)).join("\n")
        const env = { MAILJET_API_KEY: KEY, MAILJET_SECRET_KEY: SECRET, MAILJET_LIST_ID: "1", MAILJET_BASE_URL: sim.url, MAILJET_STATE_DIR: dir }
        const result = yield* Effect.promise(() => runBin(["deliver", "--feedback", file], env, `${events}\n`))
        expect(result.code).toBe(0)
        const lines = Fs.readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, any>)
        const emails = lines.map((l) => l["traits"]["email"] as string)
        const listed = Array.from({ length: LARGE }, (_, i) => i + 1).filter((n) => Simulator.seededUnsubscribed(n, 0.01)).map(Simulator.seededEmail)
        expect(listed.length).toBe(LARGE / 100)
        // Each of the list's unsubscribed once, and the run's own unsubscribe.
        expect([...emails].sort()).toStrictEqual([...listed, "lou@example.com"].sort())
        expect(result.stderr).toContain("read in the background go to --feedback once read")
        Fs.rmSync(dir, { recursive: true })
      }))
  }
)
