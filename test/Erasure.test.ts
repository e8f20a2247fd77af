/**
 * Deletion requests end to end: the built CLI (`dist/bin.js`) against the simulator over real
 * HTTP, with its tombstones in a temporary MAILJET_STATE_DIR (never the real home). The three
 * acceptance scenarios of issue 27, a bulk window, `erase`, and no address in the state file, the
 * outcome lines' logs or stderr.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as Simulator from "../src/Simulator/Simulator.js"
import { runBin } from "./support/bin.js"
import { KEY, SECRET, simulatorOptions } from "./support/layers.js"

const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "signal-mailjet-erase-"))
afterAll(() => Fs.rmSync(tmp, { recursive: true, force: true }))
let n = 0
const fresh = () => Path.join(tmp, `state-${++n}`)
const file = (lines: ReadonlyArray<unknown>) => {
  const path = Path.join(tmp, `input-${++n}.ndjson`)
  Fs.writeFileSync(path, lines.map((l) => JSON.stringify(l)).join("\n") + "\n")
  return path
}

const env = (sim: Simulator.SimulatorService, state: string, extra: Record<string, string> = {}) => ({
  MAILJET_API_KEY: KEY,
  MAILJET_SECRET_KEY: SECRET,
  MAILJET_LIST_ID: "1",
  MAILJET_BASE_URL: sim.url,
  MAILJET_MAX_RPS: "1000",
  MAILJET_RETRY_BASE: "10 millis",
  MAILJET_STATE_DIR: state,
  ...extra
})

const run = (args: ReadonlyArray<string>, e: Record<string, string>) =>
  Effect.promise(() => runBin([args[0]!, "--log-level", "debug", ...args.slice(1)], e)).pipe(
    Effect.map((r) => ({ ...r, lines: r.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>) }))
  )

const JANE = "jane.erased@example.com"
const signUp = (email: string, at: string) => ({ type: "track", event: "Signed Up", timestamp: at, traits: { email, first_name: "Jane" }, context: { consent: { marketing: true } } })
const order = (email: string, at: string) => ({ type: "track", event: "Order Completed", timestamp: at, traits: { email }, properties: { revenue: 10 } })
const deletion = (email: string, at: string) => ({ type: "track", event: "Deletion Requested", timestamp: at, traits: { email } })

const contactOf = (email: string) => Effect.flatMap(Simulator.Simulator, (sim) => sim.contact(email))

/** Nothing the tool wrote (state files, stdout, stderr with debug logs) holds the address. */
const noAddress = (state: string, outputs: ReadonlyArray<string>, email: string) => {
  for (const name of Fs.existsSync(state) ? Fs.readdirSync(state) : []) {
    const bytes = Fs.readFileSync(Path.join(state, name))
    expect(bytes.includes(Buffer.from(email)), name).toBe(false)
    expect(bytes.toString("latin1").toLowerCase().includes(email.split("@")[0]!), name).toBe(false)
  }
  for (const text of outputs) expect(text).not.toContain(email)
}

layer(Simulator.layer(simulatorOptions({ seed: 27 })), { excludeTestServices: true })("deletion requests (end to end)", (it) => {
  describe("deliver", () => {
    it.effect("sign-up, then `erase EMAIL`, then a later run with an event from before the erasure: not re-created, and the outcome says why", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const state = fresh()
        const first = yield* run(["deliver", file([signUp(JANE, "2026-01-01T10:00:00Z")])], env(sim, state))
        expect(first.code).toBe(0)
        expect(Option.isSome(yield* contactOf(JANE))).toBe(true)
        const erased = yield* run(["erase", JANE], env(sim, state))
        expect(erased.code).toBe(0)
        expect(erased.lines).toEqual([{ line: 1, event: "erase", outcome: "erased", action: "erase", status: 200, attempts: 1 }])
        expect(Option.isNone(yield* contactOf(JANE))).toBe(true)
        // The erasure was done now: an event of January is older.
        const late = yield* run(["deliver", file([order(JANE, "2026-01-02T10:00:00Z")])], env(sim, state))
        expect(late.code).toBe(0)
        expect(late.lines[0]).toMatchObject({ outcome: "dropped" })
        expect(String(late.lines[0]!["reason"])).toContain("erased by a deletion request")
        expect(Option.isNone(yield* contactOf(JANE))).toBe(true)
        // Not even a call for it: the contact stays erased in Mailjet.
        expect((yield* sim.requests).filter((r) => r.path.includes("managecontact")).length).toBe(1)
        noAddress(state, [first.stderr, erased.stderr, late.stderr], JANE)
      }))

    it.effect("one file: sign-up, Deletion Requested and a late event from before it: erased, and the late event dropped", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const state = fresh()
        const r = yield* run(["deliver", file([
          signUp(JANE, "2026-03-01T00:00:00Z"),
          deletion(JANE, "2026-03-02T00:00:00Z"),
          order(JANE, "2026-03-01T12:00:00Z"),
          { type: "delete", userId: "u9", timestamp: "2026-03-02T00:00:00Z", traits: { email: "never.seen@example.com" } }
        ])], env(sim, state))
        expect(r.code).toBe(0)
        expect(r.lines.map((l) => l["outcome"])).toEqual(["delivered", "erased", "dropped", "not-found"])
        expect(r.lines[1]).toMatchObject({ action: "erase", status: 200 })
        expect(r.lines[3]).toMatchObject({ action: "erase", status: 404, attempts: 0 })
        expect(Option.isNone(yield* contactOf(JANE))).toBe(true)
        expect(r.stderr).toContain("1 erased, 1 not found (erasure)")
        // The same file again (a replay, a backfill): nothing comes back, nothing is erased twice.
        const again = yield* run(["deliver", file([signUp(JANE, "2026-03-01T00:00:00Z"), deletion(JANE, "2026-03-02T00:00:00Z")])], env(sim, state))
        expect(again.lines.map((l) => l["outcome"])).toEqual(["dropped", "dropped"])
        expect(Option.isNone(yield* contactOf(JANE))).toBe(true)
        expect((yield* sim.requests).filter((r) => r.method === "DELETE").length).toBe(1)
        noAddress(state, [r.stderr, again.stderr], JANE)
      }))

    it.effect("a sign-up timestamped after the erasure creates the contact again, as a new contact", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const state = fresh()
        yield* run(["deliver", file([signUp(JANE, "2026-03-01T00:00:00Z"), deletion(JANE, "2026-03-02T00:00:00Z")])], env(sim, state))
        const before = (yield* sim.contacts).find((c) => c.name === "Anonymized")
        expect(before).toBeDefined()
        const r = yield* run(["deliver", file([signUp(JANE, "2026-03-03T00:00:00Z")])], env(sim, state))
        expect(r.lines[0]).toMatchObject({ outcome: "delivered", action: "addforce" })
        const again = yield* contactOf(JANE)
        expect(Option.isSome(again) && again.value.id).not.toBe(before!.id)
        expect(Option.isSome(again) && again.value.lists.get(1)).toBe("subscribed")
      }))

    it.effect("in a bulk window an erased contact is not in the window's jobs: its events go one by one around the erasure", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const state = fresh()
        const others = Array.from({ length: 30 }, (_, i) => signUp(`other${i}@example.com`, "2026-03-01T00:00:00Z"))
        const r = yield* run(["deliver", "--bulk", "always", file([
          ...others.slice(0, 15),
          signUp(JANE, "2026-03-01T00:00:00Z"),
          deletion(JANE, "2026-03-02T00:00:00Z"),
          order(JANE, "2026-03-01T12:00:00Z"),
          ...others.slice(15)
        ])], env(sim, state))
        expect(r.code, r.stderr).toBe(0)
        expect(r.lines.slice(15, 18).map((l) => l["outcome"])).toEqual(["delivered", "erased", "dropped"])
        expect(r.lines[15]!["via"]).toBeUndefined()
        expect(r.lines.filter((l) => l["via"] === "bulk").length).toBe(30)
        expect(Option.isNone(yield* contactOf(JANE))).toBe(true)
        const jobs = (yield* sim.requests).filter((q) => q.path.includes("managemanycontacts") && q.method === "POST")
        for (const job of jobs) expect(JSON.stringify(job.body)).not.toContain(JANE)
      }))
  })

  describe("erase", () => {
    it.effect("one outcome line per address, from the arguments and --from FILE; exit 0 when each was erased or never existed", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const state = fresh()
        yield* run(["deliver", file([signUp(JANE, "2026-03-01T00:00:00Z"), signUp("ann.erased@example.com", "2026-03-01T00:00:00Z")])], env(sim, state))
        const list = Path.join(tmp, "addresses.txt")
        Fs.writeFileSync(list, "# deletion requests\n\nANN.erased@example.com\n")
        const r = yield* run(["erase", JANE, "nobody.here@example.com", "--from", list], env(sim, state))
        expect(r.code).toBe(0)
        expect(r.lines.map((l) => [l["line"], l["outcome"]])).toEqual([[1, "erased"], [2, "not-found"], [3, "erased"]])
        expect((yield* sim.contacts).filter((c) => c.lists.get(1) === "subscribed")).toEqual([])
        const tombstones = JSON.parse(Fs.readFileSync(Path.join(state, "tombstones.json"), "utf8")) as { records: ReadonlyArray<unknown> }
        expect(tombstones.records.length).toBe(3)
        noAddress(state, [r.stderr], JANE)
        noAddress(state, [r.stderr], "ann.erased@example.com")
      }))

    it.effect("exit 1 for a text that is no address; exit 2, erasing nothing, when the state directory cannot be written", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const state = fresh()
        const bad = yield* run(["erase", "not-an-address"], env(sim, state))
        expect(bad.code).toBe(1)
        expect(bad.lines[0]).toMatchObject({ outcome: "dropped" })
        const blocker = Path.join(tmp, `blocker-${++n}`)
        Fs.writeFileSync(blocker, "a file, not a directory")
        const stuck = yield* run(["erase", JANE], env(sim, Path.join(blocker, "state")))
        expect(stuck.code).toBe(2)
        expect(stuck.stderr).toContain("MAILJET_STATE_DIR")
        expect((yield* sim.requests).filter((q) => q.method === "DELETE")).toEqual([])
      }))

    it.effect("a wrong secret key stops it with exit 2, and nothing is erased", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const r = yield* run(["erase", JANE], env(sim, fresh(), { MAILJET_SECRET_KEY: "wrong" }))
        expect(r.code).toBe(2)
        expect(r.lines[0]).toMatchObject({ outcome: "not-attempted", error: "Unauthorized" })
      }))
  })
})
