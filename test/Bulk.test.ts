/**
 * Bulk delivery end to end: the built CLI against the simulator over real sockets. `--bulk always`
 * and `--bulk auto` leave every contact as `--bulk off` leaves it over the same file; a contact
 * Mailjet refuses inside a job is a dead letter with the typed error and its own reason, and
 * `replay` takes those dead letters.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as Simulator from "../src/Simulator/Simulator.js"
import { runBin } from "./support/bin.js"
import { KEY, presetProperties, SECRET } from "./support/layers.js"

const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "signal-mailjet-bulk-"))
afterAll(() => Fs.rmSync(tmp, { recursive: true, force: true }))

/** A seeded file: many events per contact, every kind and consent, and two addresses Mailjet refuses. */
const events = (n: number, contacts: number): Array<string> => {
  let a = 12345
  const random = () => {
    a = (a * 1103515245 + 12345) % 2147483648
    return a / 2147483648
  }
  const kinds = ["Signed Up", "Identified", "Order Completed", "Subscribed", "Unsubscribed"] as const
  const out: Array<string> = []
  for (let i = 0; i < n; i++) {
    const c = Math.floor(random() * contacts)
    // Passes the mapping's loose check; Mailjet (the simulator) refuses a local part starting with a dot.
    const email = c < 2 ? `.refused${c}@example.com` : `Bulk.${c}@Example.com`
    const kind = kinds[Math.floor(random() * kinds.length)]!
    const r = random()
    const consent = r < 0.4 ? { marketing: true } : r < 0.7 ? { marketing: false } : undefined
    const context = { traits: { email, first_name: `F${c}-${i % 3}` }, ...(consent ? { consent } : {}) }
    out.push(
      kind === "Identified"
        ? JSON.stringify({ type: "identify", messageId: `b${i}`, context })
        : JSON.stringify({ type: "track", event: kind, messageId: `b${i}`, properties: { method: `m${i % 4}`, revenue: i, currency: "EUR" }, context })
    )
  }
  return out
}

const env = (sim: Simulator.SimulatorService, extra: Record<string, string>) => ({
  MAILJET_API_KEY: KEY,
  MAILJET_SECRET_KEY: SECRET,
  MAILJET_LIST_ID: "1",
  MAILJET_BASE_URL: sim.url,
  MAILJET_RETRY_BASE: "10 millis",
  ...extra
})

const finalState = Effect.gen(function*() {
  const sim = yield* Simulator.Simulator
  const contacts = yield* sim.contacts
  return new Map(contacts.map((c) => [c.email, { name: c.name, properties: c.properties, lists: [...c.lists] }]))
})

const deliver = (file: string, bulk: string, extra: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    yield* sim.reset
    yield* sim.setFaults({ jobDurationMs: 300 })
    const deadLetters = Path.join(tmp, `dead-${bulk}.ndjson`)
    const r = yield* Effect.promise(() => runBin(["deliver", file, "--bulk", bulk, "--dead-letters", deadLetters], env(sim, extra), "", 60_000))
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
    const requests = yield* sim.requests
    return { r, lines, deadLetters, state: yield* finalState, requests }
  })

layer(Simulator.layer({ apiKey: KEY, secretKey: SECRET, properties: presetProperties, seed: 5 }), { excludeTestServices: true })(
  "bulk delivery (CLI, real sockets)",
  (it) => {
    it.effect("always and auto leave every contact as off does; refused contacts are typed dead letters, and replay takes them", () =>
      Effect.gen(function*() {
        const input = events(600, 60)
        const file = Path.join(tmp, "events.ndjson")
        Fs.writeFileSync(file, input.join("\n") + "\n")

        const off = yield* deliver(file, "off", { MAILJET_MAX_RPS: "1000" })
        const always = yield* deliver(file, "always", { MAILJET_MAX_RPS: "1000", MAILJET_BULK_SIZE: "25" })
        // 10 calls/s: 600 events are a minute of calls one by one, so auto goes bulk at once.
        const auto = yield* deliver(file, "auto", { MAILJET_MAX_RPS: "10" })

        expect(off.state.size).toBeGreaterThan(50)
        expect(always.state).toEqual(off.state)
        expect(auto.state).toEqual(off.state)
        expect(auto.r.stderr).toContain("sending bulk jobs")

        for (const run of [always, auto]) {
          // One line per event, in input order, each event's own outcome.
          expect(run.lines.map((l) => l["line"])).toEqual(input.map((_, i) => i + 1))
          expect(run.lines.map((l) => l["outcome"])).toEqual(off.lines.map((l) => l["outcome"]))
          expect(run.lines.map((l) => l["action"])).toEqual(off.lines.map((l) => l["action"]))
          for (const l of run.lines) {
            if (l["outcome"] === "delivered" || l["outcome"] === "dead-lettered") {
              expect(l).toMatchObject({ via: "bulk", job: expect.any(Number) })
            }
          }
          // Contacts folded: far fewer calls than events.
          expect(run.requests.filter((q) => q.path.endsWith("/managecontact")).length).toBe(0)
        }
        expect(always.requests.filter((q) => q.method === "POST" && q.path.endsWith("/managemanycontacts")).length)
          .toBeGreaterThanOrEqual(Math.ceil(58 / 25))

        // The refused addresses: dead-lettered with the typed error and Mailjet's own words.
        const refused = always.lines.filter((l) => l["outcome"] === "dead-lettered")
        expect(refused.length).toBeGreaterThan(0)
        for (const l of refused) {
          expect(l).toMatchObject({ error: "InvalidContact", via: "bulk" })
          expect(String(l["reason"])).toContain("Invalid local part in mail")
        }
        const dead = Fs.readFileSync(always.deadLetters, "utf8").trim().split("\n")
        expect(dead.length).toBe(refused.length)

        // replay takes the dead letters: one outcome each, the address still refused, now one by one.
        const sim = yield* Simulator.Simulator
        const replayed = yield* Effect.promise(() =>
          runBin(["replay", always.deadLetters], env(sim, { MAILJET_MAX_RPS: "1000", MAILJET_BULK: "always" }), "", 60_000)
        )
        const replayLines = replayed.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
        expect(replayLines.length).toBe(refused.length)
        for (const l of replayLines) expect(l).toMatchObject({ outcome: "dead-lettered", error: "InvalidContact" })
      }), { timeout: 180_000 })
  }
)
