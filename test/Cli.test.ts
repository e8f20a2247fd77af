/**
 * End to end: the real built process (`dist/bin.js …`, built by test/globalSetup.ts) against
 * the Mailjet simulator served from this test process over real HTTP. Every run gets an explicit
 * environment (nothing inherited, so no stray MAILJET_* variables) and every run's stdout and
 * stderr are checked for the credentials.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Duration, Effect, Option, Schedule } from "effect"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll } from "vitest"
import { DefaultPreset } from "../src/Preset/Preset.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { kim, SEED_BODY, SEED_EVENT } from "./support/seed.js"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const BIN = Path.join(ROOT, "dist", "bin.js")

// Distinctive, so a leak is unmistakable.
const KEY = "e2e-apikey-Q7ZP4KX2"
const SECRET = "e2e-secret-M3VW8RJ5"
const WRONG_SECRET = "e2e-wrong-secret-H6TN1CY9"
const LIST_ID = 7
const SECRETS = [
  KEY,
  SECRET,
  WRONG_SECRET,
  Buffer.from(`${KEY}:${SECRET}`).toString("base64"),
  Buffer.from(`${KEY}:${WRONG_SECRET}`).toString("base64")
]

const MANAGE_PATH = `/v3/REST/contactslist/${LIST_ID}/managecontact`

// ---- the seed example (Signal's event contract, README)

const SEED = JSON.stringify(SEED_EVENT)
const SEED_OUTCOME = {
  line: 1,
  messageId: "6f1d3c1e-8a51-4c4b-9a0e-2f4f1c7b9d10",
  event: "Signed Up",
  outcome: "delivered",
  action: "addforce",
  status: 201,
  attempts: 1
}

const IDENTIFY = JSON.stringify({
  type: "identify",
  messageId: "a3c2e9b0-0d4e-4a61-8f0e-5b7a1c2d3e01",
  userId: "u-1002",
  traits: { email: "Max.Mustermann@Example.de", firstName: "Max", lastName: "Mustermann" },
  context: { consent: { marketing: false } }
})

const subscribed = (i: number) =>
  JSON.stringify({ type: "track", event: "Subscribed", messageId: `m-${i}`, traits: { email: `user${i}@example.com` } })

// ---- running the process

interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

interface Running {
  readonly child: ChildProcessWithoutNullStreams
  readonly done: Promise<RunResult>
}

/** Only what the process needs: PATH and friends, never this process's MAILJET_* or MJ_* variables. */
const cleanEnv = (vars: Readonly<Record<string, string>>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { NO_COLOR: "1" }
  for (const name of ["PATH", "HOME", "LANG", "TMPDIR"]) {
    const value = process.env[name]
    if (value !== undefined) env[name] = value
  }
  return { ...env, ...vars }
}

const noSecrets = (r: RunResult): RunResult => {
  for (const secret of SECRETS) {
    expect(r.stdout, `stdout leaks ${secret}`).not.toContain(secret)
    expect(r.stderr, `stderr leaks ${secret}`).not.toContain(secret)
  }
  return r
}

const startProcess = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>): Running => {
  const child = spawn(BIN, args, { cwd: ROOT, env: cleanEnv(env), stdio: ["pipe", "pipe", "pipe"] })
  // Writes after the process ended fail with EPIPE: expected, not a test failure.
  child.stdin.on("error", () => undefined)
  let stdout = ""
  let stderr = ""
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    stdout += d
  })
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d
  })
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on("error", reject)
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { child, done }
}

/** Starts the process, killed when the scope closes if it is still running. */
const start = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>) =>
  Effect.acquireRelease(Effect.sync(() => startProcess(args, env)), ({ child }) =>
    Effect.sync(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    }))

const finished = (running: Running, timeout: Duration.DurationInput = "20 seconds") =>
  Effect.promise(() => running.done).pipe(
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`the process did not end within ${Duration.format(timeout)}`) }),
    Effect.orDie,
    Effect.map(noSecrets)
  )

/** Runs to the end with `stdin` as its whole input (none: stdin is closed at once). */
const run = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>, stdin = "") =>
  Effect.scoped(Effect.gen(function*() {
    const running = yield* start(args, env)
    running.child.stdin.end(stdin)
    return yield* finished(running)
  }))

const lines = (text: string): ReadonlyArray<string> => text.split("\n").filter((l) => l !== "")
const outcomes = (stdout: string): ReadonlyArray<Record<string, unknown>> =>
  lines(stdout).map((l) => JSON.parse(l) as Record<string, unknown>)
const plain = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, "")
const summaryOf = (stderr: string) => {
  const m = /^signal-mailjet: (\d+) read, (\d+) delivered, (\d+) dropped, (\d+) dead-lettered, (\d+) not attempted(?:, \d+ unread)? in \d+\.\d s(?: \(stopped: (\w+)\))?$/m
    .exec(stderr)
  expect(m, `no summary line in:\n${stderr}`).not.toBeNull()
  const [, read, delivered, dropped, deadLettered, notAttempted, stopped] = m!
  return {
    read: Number(read),
    delivered: Number(delivered),
    dropped: Number(dropped),
    deadLettered: Number(deadLettered),
    notAttempted: Number(notAttempted),
    stopped
  }
}

// ---- the simulator

const presetProperties = Array.from(DefaultPreset.datatypes, ([name, datatype]) => ({ name, datatype }))

const simulatorOptions = (properties: typeof presetProperties): Simulator.LayerOptions => ({
  apiKey: KEY,
  secretKey: SECRET,
  lists: [{ id: LIST_ID, name: "Signal" }],
  properties,
  seed: 7
})

const fresh = Effect.flatMap(Simulator.Simulator, (sim) => Effect.zipRight(sim.setFaults({}), sim.reset))

const requests = Effect.flatMap(Simulator.Simulator, (sim) => sim.requests)
const manageRequests = Effect.map(requests, (rs) => rs.filter((r) => r.path.endsWith("/managecontact")))

/** Polls until `check` holds. */
const waitFor = (what: string, check: Effect.Effect<boolean, never, Simulator.Simulator>) =>
  check.pipe(
    Effect.flatMap((ok) => (ok ? Effect.void : Effect.fail("not yet" as const))),
    Effect.retry({ schedule: Schedule.spaced("10 millis") }),
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error(`timed out waiting for ${what}`) }),
    Effect.orDie
  )

/** Preflight is done once the contact properties have been read. */
// Preflight's last read: who is unsubscribed in the list (MAILJET_RESUBSCRIBE=explicit, the default).
const preflightDone = waitFor(
  "preflight",
  Effect.map(requests, (rs) => rs.some((r) => r.path.startsWith("/v3/REST/listrecipient") && r.status === 200))
)

const env = (sim: Simulator.SimulatorService, extra: Readonly<Record<string, string>> = {}): Record<string, string> => ({
  MAILJET_API_KEY: KEY,
  MAILJET_SECRET_KEY: SECRET,
  MAILJET_LIST_ID: String(LIST_ID),
  MAILJET_BASE_URL: sim.url,
  MAILJET_MAX_RPS: "1000",
  MAILJET_RETRY_BASE: "10 millis",
  ...extra
})

const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "signal-mailjet-cli-"))
afterAll(() => Fs.rmSync(tmp, { recursive: true, force: true }))
let files = 0
const file = (content: string): string => {
  const path = Path.join(tmp, `input-${++files}.ndjson`)
  Fs.writeFileSync(path, content)
  return path
}
const newPath = (name: string): string => Path.join(tmp, `${++files}-${name}`)

// ---- the tests

layer(Simulator.layer(simulatorOptions(presetProperties)), { excludeTestServices: true })("CLI (end to end)", (it) => {
  describe("deliver", () => {
    for (const via of ["stdin", "a file"] as const) {
      it.effect(`the seed example via ${via}: its outcome line, and exactly its request`, () =>
        Effect.gen(function*() {
          yield* fresh
          const sim = yield* Simulator.Simulator
          const r = via === "stdin"
            ? yield* run(["deliver"], env(sim), `${SEED}\n`)
            : yield* run(["deliver", file(`${SEED}\n`)], env(sim))
          expect(r.code).toBe(0)
          expect(outcomes(r.stdout)).toStrictEqual([SEED_OUTCOME])
          expect(summaryOf(r.stderr)).toStrictEqual({
            read: 1,
            delivered: 1,
            dropped: 0,
            deadLettered: 0,
            notAttempted: 0,
            stopped: undefined
          })
          const sent = yield* manageRequests
          expect(sent.map((s) => ({ method: s.method, path: s.path, body: s.body, status: s.status }))).toStrictEqual([
            { method: "POST", path: MANAGE_PATH, body: SEED_BODY, status: 201 }
          ])
          const contact = Option.getOrThrow(yield* sim.contact("jane.doe@example.com"))
          expect(contact.lists.get(LIST_ID)).toBe("subscribed")
        }))
    }

    it.effect("each log line is written once, in the format asked for", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        const input = file(`${SEED}\nthis is {not json\n`)
        // The bin installs a logger for every command and --log-format its own: one must replace the other.
        const text = yield* run(["deliver", input], env(sim))
        expect(lines(text.stderr).filter((l) => l.includes("dead-lettered: not JSON"))).toHaveLength(1)
        const json = yield* run(["deliver", input, "--log-format", "json"], env(sim))
        const logged = lines(json.stderr).filter((l) => l.includes("dead-lettered: not JSON"))
        expect(logged).toHaveLength(1)
        expect(JSON.parse(logged[0]!)).toMatchObject({ logLevel: "WARN" })
        expect(json.stderr).not.toMatch(/level=/)
      }))

    it.effect("a mixed file: outcomes in input order on physical line numbers, malformed lines dead-lettered, then replay", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        const notAnEvent = { foo: 1, messageId: "x-1" }
        const input = [
          SEED, // 1 delivered
          "", // 2 blank: no event
          "this is {not json", // 3 dead-lettered
          JSON.stringify({ type: "page", name: "Pricing", messageId: "p-1", context: { traits: { email: "a@example.com" } } }), // 4 dropped
          JSON.stringify(notAnEvent), // 5 JSON, not an event: dead-lettered
          JSON.stringify({ type: "track", event: "Signed Up", messageId: "n-1", properties: { method: "email" } }), // 6 dropped
          "   ", // 7 blank
          JSON.stringify({ type: "track", event: "Signed Up", messageId: "b-1", traits: { email: "not-an-email" } }), // 8 dropped
          IDENTIFY // 9 delivered
        ].join("\n") + "\n"
        const deadLetters = newPath("dead.ndjson")
        const before = Date.now()
        const r = yield* run(["deliver", file(input), "--dead-letters", deadLetters], env(sim))
        const after = Date.now()
        expect(r.code).toBe(1)
        const malformed = {
          outcome: "dead-lettered",
          error: "MalformedEvent",
          attempts: 0
        }
        expect(outcomes(r.stdout)).toStrictEqual([
          SEED_OUTCOME,
          { line: 3, ...malformed, reason: expect.stringMatching(/^not JSON: /) },
          { line: 4, messageId: "p-1", event: "page", outcome: "dropped", reason: "event not mapped by the preset" },
          {
            line: 5,
            messageId: "x-1",
            ...malformed,
            reason: "not a Signal event: type: is missing"
          },
          {
            line: 6,
            messageId: "n-1",
            event: "Signed Up",
            outcome: "dropped",
            reason: "no email in traits, context.traits or properties"
          },
          { line: 8, messageId: "b-1", event: "Signed Up", outcome: "dropped", reason: "email is not a valid address" },
          {
            line: 9,
            messageId: "a3c2e9b0-0d4e-4a61-8f0e-5b7a1c2d3e01",
            event: "Identified",
            outcome: "delivered",
            action: "unsub",
            status: 201,
            attempts: 1
          }
        ])
        expect(summaryOf(r.stderr)).toMatchObject({ read: 7, delivered: 2, dropped: 3, deadLettered: 2, notAttempted: 0 })
        expect((yield* manageRequests).map((s) => (s.body as { readonly Email: string }).Email)).toStrictEqual([
          "jane.doe@example.com",
          "max.mustermann@example.de"
        ])

        // Dead letters: why (error, reason, attempts, at, line), then the original: `event` when it was JSON, `text` when not.
        const records = outcomes(Fs.readFileSync(deadLetters, "utf8"))
        const printed = outcomes(r.stdout).filter((o) => o["outcome"] === "dead-lettered")
        const why = (i: number, line: number) =>
          ({ error: "MalformedEvent", reason: printed[i]!["reason"], attempts: 0, at: expect.any(String), line })
        expect(records).toStrictEqual([
          { ...why(0, 3), text: "this is {not json" },
          { ...why(1, 5), event: notAnEvent }
        ])
        for (const record of records) {
          const at = Date.parse(String(record["at"]))
          expect(at).toBeGreaterThanOrEqual(before - 1000)
          expect(at).toBeLessThanOrEqual(after + 1000)
        }

        // Replay: the same outcomes for those events (numbered by the dead-letter file's lines).
        yield* sim.reset
        const again = yield* run(["replay", deadLetters], env(sim))
        expect(again.code).toBe(1)
        expect(outcomes(again.stdout)).toStrictEqual(printed.map((o, i) => ({ ...o, line: i + 1 })))
        expect((yield* manageRequests).length).toBe(0)
      }))
  })

  describe("fatal errors", () => {
    /** Exit 2, nothing on stdout, and stderr says what is wrong and the fix. */
    const expectFatal = (
      results: ReadonlyArray<RunResult>,
      says: ReadonlyArray<string>
    ) => {
      for (const r of results) {
        expect(r.code).toBe(2)
        expect(r.stdout).toBe("")
        for (const text of says) expect(r.stderr).toContain(text)
      }
    }

    it.effect("wrong credentials: exit 2, re-copy the keys, nothing delivered", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        const results = yield* Effect.forEach(
          [["deliver"], ["deliver", "--log-level", "debug"], ["check"]],
          (args) => run(args, env(sim, { MAILJET_SECRET_KEY: WRONG_SECRET }), `${SEED}\n${IDENTIFY}\n`),
          { concurrency: "unbounded" }
        )
        expectFatal(results, ["Mailjet rejected the credentials (401)", "Re-copy both keys"])
        // Each command asked (preflight's first call) and was refused; nothing else was answered.
        const statuses = (yield* requests).map((q) => q.status)
        expect(statuses.length).toBeGreaterThanOrEqual(3)
        expect(statuses.filter((s) => s !== 401)).toStrictEqual([])
        expect(yield* manageRequests).toStrictEqual([])
        expect(yield* sim.contacts).toStrictEqual([])
      }))

    it.effect("unknown list id: exit 2, check the list id, nothing delivered", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        const results = yield* Effect.forEach(
          [["deliver"], ["check"]],
          (args) => run(args, env(sim, { MAILJET_LIST_ID: "99" }), `${SEED}\n`),
          { concurrency: "unbounded" }
        )
        expectFatal(results, ["Mailjet has no contact list 99 for this API key (404 Object not found)", "Check MAILJET_LIST_ID"])
        expect(yield* manageRequests).toStrictEqual([])
        expect(yield* sim.contacts).toStrictEqual([])
      }))
  })

  describe("configuration", () => {
    it.effect("bad variables: exit 2, one line per bad variable naming it, no request sent", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        const cases: ReadonlyArray<{ readonly vars: Record<string, string>; readonly bad: ReadonlyArray<string> }> = [
          { vars: { MAILJET_SECRET_KEY: SECRET, MAILJET_LIST_ID: "7", MAILJET_BASE_URL: sim.url }, bad: ["MAILJET_API_KEY"] },
          { vars: { ...env(sim), MAILJET_LIST_ID: "seven" }, bad: ["MAILJET_LIST_ID"] },
          { vars: { ...env(sim), MAILJET_LIST_ID: "7.5" }, bad: ["MAILJET_LIST_ID"] },
          { vars: { ...env(sim), MAILJET_BASE_URL: "http://example.com" }, bad: ["MAILJET_BASE_URL"] },
          {
            vars: { MAILJET_SECRET_KEY: SECRET, MAILJET_LIST_ID: "abc", MAILJET_BASE_URL: "http://10.1.2.3:3030" },
            bad: ["MAILJET_API_KEY", "MAILJET_LIST_ID", "MAILJET_BASE_URL"]
          }
        ]
        // Independent runs that must not reach the simulator at all: run them side by side.
        // deliver for each case; check (same configuration path) for the case with every problem at once.
        const runs = [
          ...cases.map(({ bad, vars }) => ({ bad, vars, command: "deliver" })),
          { ...cases.at(-1)!, command: "check" }
        ]
        const results = yield* Effect.forEach(runs, ({ command, vars }) => run([command], vars, `${SEED}\n`), {
          concurrency: 4
        })
        for (const [i, { bad, command }] of runs.entries()) {
          const r = results[i]!
          expect(r.code, `${command} with bad ${bad.join(", ")}`).toBe(2)
          expect(r.stdout).toBe("")
          expect(r.stderr).toMatch(/^signal-mailjet: configuration error:$/m)
          const problems = lines(r.stderr).filter((l) => /^\s+MAILJET_/.test(l)).map((l) => l.trim())
          expect(problems.map((p) => p.slice(0, p.indexOf(":")))).toStrictEqual(bad)
          if (bad.includes("MAILJET_API_KEY")) {
            expect(problems[0]).toBe("MAILJET_API_KEY: missing (set MAILJET_API_KEY, or Mailjet's own MJ_APIKEY_PUBLIC)")
          }
          if (bad.includes("MAILJET_BASE_URL")) expect(r.stderr).toMatch(/MAILJET_BASE_URL: plain http is refused/)
        }
        expect(yield* requests).toStrictEqual([])
      }))

    it.effect("MJ_APIKEY_PUBLIC / MJ_APIKEY_PRIVATE are accepted as fallbacks", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        const { MAILJET_API_KEY: _k, MAILJET_SECRET_KEY: _s, ...rest } = env(sim)
        const vars = { ...rest, MJ_APIKEY_PUBLIC: KEY, MJ_APIKEY_PRIVATE: SECRET }
        const [r, check] = yield* Effect.all([run(["deliver"], vars, `${SEED}\n`), run(["check"], vars)], {
          concurrency: "unbounded"
        })
        expect(r.code).toBe(0)
        expect(outcomes(r.stdout)).toStrictEqual([SEED_OUTCOME])
        expect(check.code).toBe(0)
      }))
  })

  it.effect("--dry-run without credentials prints method, path and body, and sends nothing", () =>
    Effect.gen(function*() {
      yield* fresh
      const sim = yield* Simulator.Simulator
      const input = `${SEED}\n${JSON.stringify({ type: "page", messageId: "p-2" })}\n`
      const [r, bare] = yield* Effect.all([
        run(["deliver", "--dry-run"], { MAILJET_LIST_ID: String(LIST_ID), MAILJET_BASE_URL: sim.url }, input),
        // Without any configuration at all, the path shows where the list id goes.
        run(["deliver", "--dry-run", file(`${SEED}\n`)], {})
      ], { concurrency: "unbounded" })
      expect(r.code).toBe(0)
      expect(outcomes(r.stdout)).toStrictEqual([
        {
          line: 1,
          messageId: SEED_OUTCOME.messageId,
          event: "Signed Up",
          outcome: "dry-run",
          action: "addforce",
          request: { method: "POST", path: MANAGE_PATH, body: SEED_BODY }
        },
        { line: 2, messageId: "p-2", event: "page", outcome: "dropped", reason: "event not mapped by the preset" }
      ])
      expect(bare.code).toBe(0)
      expect(outcomes(bare.stdout)[0]!["request"]).toStrictEqual({
        method: "POST",
        path: "/v3/REST/contactslist/{MAILJET_LIST_ID}/managecontact",
        body: SEED_BODY
      })
      expect(yield* requests).toStrictEqual([])
    }))

  it.effect("check: exit 0 when all is well", () =>
    Effect.gen(function*() {
      yield* fresh
      const sim = yield* Simulator.Simulator
      const r = yield* run(["check"], env(sim))
      expect(r.code).toBe(0)
      expect(lines(r.stdout)).toStrictEqual([
        `list ${LIST_ID} "Signal": reachable with these credentials`,
        ...presetProperties.map((p) => `property ${p.name} (${p.datatype}): ok`),
        "property signal_last_event_at (datetime): not defined (optional); without it a replay never overwrites what Mailjet holds. Create it with check --create-missing-properties",
        "all good"
      ])
    }))

  it.effect("check on a deleted list: exit 2, and the message says deleted, not reachable", () =>
    Effect.gen(function*() {
      yield* fresh
      const sim = yield* Simulator.Simulator
      const auth = `Basic ${Buffer.from(`${KEY}:${SECRET}`).toString("base64")}`
      const del = yield* Effect.promise(() => fetch(`${sim.url}/v3/REST/contactslist/${LIST_ID}`, { method: "DELETE", headers: { authorization: auth } }))
      expect(del.status).toBe(204)
      const r = yield* run(["check"], env(sim))
      yield* fresh
      expect(r.code).toBe(2)
      expect(r.stdout).toBe("")
      expect(r.stderr).toContain(`signal-mailjet check: Mailjet contact list ${LIST_ID} was deleted`)
    }))

  describe("Mailjet failing", () => {
    it.effect("5xx on every call: dead-lettered MailjetUnavailable after MAILJET_MAX_ATTEMPTS, with --log-level debug", () =>
      Effect.scoped(Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        const running = yield* start(["deliver", "--log-level", "debug"], env(sim, { MAILJET_MAX_ATTEMPTS: "2" }))
        yield* preflightDone
        yield* sim.setFaults({ errorRate: 1 })
        running.child.stdin.end(`${SEED}\n`)
        const r = yield* finished(running)
        expect(r.code).toBe(1)
        expect(outcomes(r.stdout)).toStrictEqual([
          {
            line: 1,
            messageId: SEED_OUTCOME.messageId,
            event: "Signed Up",
            outcome: "dead-lettered",
            attempts: 2,
            reason: expect.stringMatching(/^gave up after 2 attempts: Mailjet could not be reached or failed \(HTTP 50[03]\)/),
            error: "MailjetUnavailable"
          }
        ])
        const statuses = (yield* manageRequests).map((q) => q.status)
        expect(statuses.length).toBe(2)
        expect(statuses.filter((s) => s !== 500 && s !== 503)).toStrictEqual([])
        // Debug logging is on (the retry is logged) and masks the email.
        expect(r.stderr).toMatch(/level=DEBUG.*message=retrying/)
        expect(r.stderr).toContain("j***@example.com")
        expect(r.stderr).not.toContain("jane.doe@example.com")
      })))

    it.effect("an outage: the first event is dead-lettered, the rest not attempted, exit 2", () =>
      Effect.scoped(Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        const running = yield* start(
          ["deliver"],
          env(sim, { MAILJET_MAX_ATTEMPTS: "2", MAILJET_OUTAGE_THRESHOLD: "2", MAILJET_CONCURRENCY: "1" })
        )
        yield* preflightDone
        yield* sim.setFaults({ outage: true })
        running.child.stdin.end([0, 1, 2, 3].map(subscribed).join("\n") + "\n")
        const r = yield* finished(running)
        expect(r.code).toBe(2)
        const down = "Mailjet looks down (2 calls in a row failed, last: HTTP 503); stopped sending. Rerun later: redelivery is safe."
        expect(outcomes(r.stdout)).toStrictEqual([
          {
            line: 1,
            messageId: "m-0",
            event: "Subscribed",
            outcome: "dead-lettered",
            attempts: 2,
            reason: expect.stringMatching(/^gave up after 2 attempts: Mailjet could not be reached or failed \(HTTP 503\)/),
            error: "MailjetUnavailable"
          },
          ...[1, 2, 3].map((i) => ({
            line: i + 1,
            messageId: `m-${i}`,
            event: "Subscribed",
            outcome: "not-attempted",
            reason: down
          }))
        ])
        expect(summaryOf(r.stderr)).toStrictEqual({
          read: 4,
          delivered: 0,
          dropped: 0,
          deadLettered: 1,
          notAttempted: 3,
          stopped: "Outage"
        })
        expect(r.stderr).toContain(`signal-mailjet: ${down}`)
        // Line 1 has its outcome (a dead letter); the rest resume from line 2, once Mailjet is back.
        expect(r.stderr).toContain(
          "signal-mailjet: every line before line 2 has its outcome; standard input cannot be read again, so to resume, send the same input again to: signal-mailjet deliver --from-line 2"
        )
        expect((yield* manageRequests).length).toBe(2)
      })))
  })

  it.effect("SIGTERM in the middle of a slow run: nothing new sent, in-flight events finish, an outcome for every line read, nothing lost", () =>
    Effect.scoped(Effect.gen(function*() {
      yield* fresh
      const sim = yield* Simulator.Simulator
      yield* sim.setFaults({ latencyMs: 300 })
      const running = yield* start(["deliver"], env(sim, { MAILJET_CONCURRENCY: "8" }))
      yield* preflightDone
      // Events arrive faster than they can be sent (8 in flight, 300 ms each), and stdin stays open.
      let written = 0
      const writer = yield* Effect.acquireRelease(
        Effect.sync(() =>
          setInterval(() => {
            running.child.stdin.write(`${subscribed(written++)}\n`)
          }, 15)
        ),
        (t) => Effect.sync(() => clearInterval(t))
      )
      yield* Effect.sleep("1500 millis")
      const sentBefore = (yield* manageRequests).length
      running.child.kill("SIGTERM")
      const r = yield* finished(running, "30 seconds")
      clearInterval(writer)

      expect(r.signal).toBeNull()
      // Draining starts nothing new: at most the 8 lanes' sends were already on their way.
      expect((yield* manageRequests).length - sentBefore).toBeLessThanOrEqual(8)
      expect(r.stderr).toContain("signal-mailjet: shutting down: finishing events in flight")
      const printed = outcomes(r.stdout)
      const summary = summaryOf(r.stderr)
      expect(printed.length).toBeGreaterThan(0)
      // It stopped reading: not everything written was read.
      expect(printed.length).toBeLessThan(written)
      // Every line read has exactly one outcome, in input order.
      expect(printed.map((o) => [o["line"], o["messageId"]])).toStrictEqual(
        printed.map((_, i) => [i + 1, `m-${i}`])
      )
      const count = (kind: string) => printed.filter((o) => o["outcome"] === kind).length
      expect(summary.read).toBe(printed.length)
      expect(summary.delivered).toBe(count("delivered"))
      expect(summary.dropped).toBe(count("dropped"))
      expect(summary.deadLettered).toBe(count("dead-lettered"))
      expect(summary.notAttempted).toBe(count("not-attempted"))
      expect(summary.delivered + summary.dropped + summary.deadLettered + summary.notAttempted).toBe(printed.length)
      expect(r.code).toBe(summary.notAttempted > 0 ? 2 : summary.deadLettered > 0 ? 1 : 0)
      // Nothing lost: what was delivered is in Mailjet, and nothing without an outcome line was sent.
      const delivered = printed.filter((o) => o["outcome"] === "delivered").map((o) => Number(String(o["messageId"]).slice(2)))
      const contacts = (yield* sim.contacts).map((c) => c.email).sort()
      expect(contacts).toStrictEqual(delivered.map((i) => `user${i}@example.com`).sort())
      for (const o of printed) {
        if (o["outcome"] === "delivered") expect(o).toMatchObject({ event: "Subscribed", action: "addforce", status: 201, attempts: 1 })
      }
      // The in-flight events finished on their own: the deadline cut none of them off mid-send.
      expect(printed.filter((o) => o["outcome"] === "not-attempted" && o["attempts"] !== undefined)).toStrictEqual([])
    })), 40_000)

  describe("help and demo", () => {
    it.effect("--help and deliver --help describe the commands and options", () =>
      Effect.gen(function*() {
        const [top, deliver] = yield* Effect.all([run(["--help"], {}), run(["deliver", "--help"], {})], {
          concurrency: "unbounded"
        })
        expect(top.code).toBe(0)
        const text = plain(top.stdout)
        for (const command of ["deliver", "check", "replay", "simulate", "demo"]) expect(text).toMatch(new RegExp(`^${command}$`, "m"))
        expect(text).toContain("Datafly Signal")

        expect(deliver.code).toBe(0)
        const d = plain(deliver.stdout)
        for (const option of ["--dry-run", "--dead-letters", "--concurrency", "--preset", "--create-missing-properties", "--log-format", "--log-level"]) {
          expect(d).toContain(option)
        }
        // Help is wrapped to 80 columns: the sentence is compared with its line breaks as spaces.
        expect(d.replaceAll(/\s+/g, " ")).toContain("Exit 0: all delivered or dropped; 1: some dead-lettered; 2: a fatal error")
      }))

    it.effect("demo (npm start): exit 0, the table and the contacts", () =>
      Effect.gen(function*() {
        const r = yield* run(["demo"], {})
        expect(r.code).toBe(0)
        expect(r.stdout).toMatch(/^signal-mailjet demo: 12 example events to a local Mailjet simulator \(http:\/\/127\.0\.0\.1:\d+\)/)
        expect(r.stdout).toMatch(/^line\s+event\s+email\s+consent\s+action\s+name\s+properties sent\s+Mailjet answered$/m)
        expect(r.stdout).toMatch(/^1\s+Signed Up\s+jane\.doe@example\.com\s+Granted\s+addforce\s+Jane Doe\s+\{"first_name":"Jane","last_name":"Doe","signup_method":"email"\}\s+201 delivered$/m)
        expect(r.stdout).toContain("Contacts in list 1 afterwards:")
        expect(r.stdout).toMatch(/^email\s+name\s+subscription\s+properties$/m)
        expect(r.stdout).toMatch(/^sam\.lee@example\.com\s+Sam Lee\s+unsubscribed\s/m)
        expect(r.stdout).toMatch(/^max\.mustermann@example\.de\s+Max Mustermann\s+unsubscribed\s/m)
        // It ends with one contact read back as `signal-mailjet contact` shows it.
        expect(r.stdout).toContain("What Mailjet holds for sam.lee@example.com (signal-mailjet contact sam.lee@example.com):")
        expect(r.stdout).toMatch(/^list 1: unsubscribed at \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z/m)
      }))
  })
})

layer(
  Simulator.layer(simulatorOptions(presetProperties.filter((p) => p.name !== "signup_method"))),
  { excludeTestServices: true }
)("CLI (end to end): a contact property missing in Mailjet", (it) => {
  it.effect("a property Mailjet lacks does not hold back the update: delivered without it, the property dead-lettered alone; check names it; --create-missing-properties fixes it; its replay sends only it", () =>
    Effect.gen(function*() {
      yield* fresh
      const sim = yield* Simulator.Simulator
      const deadLetters = newPath("missing.ndjson")
      // By default the run stops before sending, names the property and both ways out.
      for (const args of [["deliver"], ["replay", file(`${SEED}\n`)]]) {
        const stopped = yield* run(args, env(sim), `${SEED}\n`)
        expect(stopped.code).toBe(2)
        expect(stopped.stdout).toBe("")
        expect(stopped.stderr).toContain(
          "signal-mailjet: contact properties the preset writes are not defined in Mailjet: signup_method (str). Nothing was sent."
        )
        expect(stopped.stderr).toContain("--create-missing-properties")
        expect(stopped.stderr).toContain("--allow-missing-properties")
      }
      expect(yield* manageRequests).toStrictEqual([])
      const r = yield* run(["deliver", "--allow-missing-properties", "--dead-letters", deadLetters], env(sim), `${SEED}\n`)
      expect(r.code).toBe(1)
      const reason = expect.stringContaining("contact properties not defined in Mailjet: signup_method.")
      expect(outcomes(r.stdout)).toStrictEqual([
        { ...SEED_OUTCOME, attempts: 2, partial: ["signup_method"], reason, error: "PropertyMissing" }
      ])
      expect(r.stderr).toContain(
        "signal-mailjet: contact property \"signup_method\" (str) is not defined in Mailjet; sent without it (--allow-missing-properties): it is dead-lettered on its own as PropertyMissing, for a replay once it exists."
      )
      expect(r.stderr).toContain("signal-mailjet: 1 delivered without some properties Mailjet refused")
      // The whole body was refused for that property alone; the rest, with its action, went again.
      const { Properties: { signup_method: _, ...names }, ...rest } = SEED_BODY
      expect((yield* manageRequests).map((q) => [q.status, q.body])).toStrictEqual([
        [400, SEED_BODY],
        [201, { ...rest, Properties: names }]
      ])
      expect(outcomes(Fs.readFileSync(deadLetters, "utf8"))).toStrictEqual([
        { event: SEED_EVENT, error: "PropertyMissing", reason, attempts: 2, at: expect.any(String), line: 1, only: ["signup_method"] }
      ])

      const check = yield* run(["check"], env(sim))
      expect(check.code).toBe(1)
      expect(check.stdout).toContain("property signup_method (str): MISSING in Mailjet")
      expect(lines(check.stdout).at(-1)).toBe("not ready: see the lines above")
      expect((yield* run(["check", "--create-missing-properties"], env(sim))).code).toBe(0)

      const before = (yield* manageRequests).length
      const replay = yield* run(["replay", deadLetters], env(sim))
      expect(replay.code).toBe(0)
      expect(outcomes(replay.stdout)).toStrictEqual([{
        ...SEED_OUTCOME,
        action: "addnoforce",
        reason: "replayed properties only (signup_method); the event's own action (addforce) landed when it was first delivered"
      }])
      expect((yield* manageRequests).slice(before).map((q) => q.body)).toStrictEqual([
        { Email: SEED_BODY.Email, Name: SEED_BODY.Name, Action: "addnoforce", Properties: { signup_method: "email" } }
      ])
    }))

})

// Its own simulator: the test before creates the missing property.
layer(
  Simulator.layer(simulatorOptions(presetProperties.filter((p) => p.name !== "signup_method"))),
  { excludeTestServices: true }
)("CLI (end to end): consent holds across a dead letter and its replay", (it) => {
  it.effect("kim signs up while a property is missing, then unsubscribes: after the fix and the replay kim is still unsubscribed, and the replay says why", () =>
    Effect.gen(function*() {
      yield* fresh
      const sim = yield* Simulator.Simulator
      const deadLetters = newPath("kim.ndjson")
      const r = yield* run(
        ["deliver", "--dead-letters", deadLetters],
        env(sim, { MAILJET_MISSING_PROPERTIES: "allow" }),
        `${kim("Signed Up", { properties: { method: "email" } })}\n${kim("Unsubscribed", {})}\n`
      )
      expect(r.code).toBe(1)
      expect(outcomes(r.stdout).map((o) => [o["outcome"], o["action"], o["partial"]])).toStrictEqual([
        ["delivered", "addforce", ["signup_method"]],
        ["delivered", "unsub", undefined]
      ])
      const membership = Effect.map(sim.contacts, (cs) => cs.find((c) => c.email === "kim@example.com")?.lists.get(LIST_ID))
      expect(yield* membership).toBe("unsubscribed")

      expect((yield* run(["check", "--create-missing-properties"], env(sim))).code).toBe(0)
      const replay = yield* run(["replay", deadLetters, "--dead-letters", newPath("kim-again.ndjson")], env(sim))
      expect(replay.code).toBe(0)
      expect(outcomes(replay.stdout)).toStrictEqual([expect.objectContaining({
        outcome: "delivered",
        action: "addnoforce",
        reason: "replayed properties only (signup_method); the event's own action (addforce) landed when it was first delivered"
      })])
      expect(yield* membership).toBe("unsubscribed")
      const contact = (yield* sim.contacts).find((c) => c.email === "kim@example.com")
      expect(contact?.properties["signup_method"]).toBe("email")
    }))
})

// Its own simulator, with signal_last_event_at defined: replays are placed by event time.
layer(Simulator.layer(simulatorOptions(presetProperties)), { excludeTestServices: true })(
  "CLI (end to end): a replay overtaken by a newer event",
  (it) => {
    it.effect("a sign-up dead-lettered after 5xx, then an unsubscribe delivered: the replay cannot re-subscribe, and names what it did not apply", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        expect((yield* run(["check", "--create-missing-properties"], env(sim))).code).toBe(0)
        yield* sim.reset // keeps the properties, so preflightDone below waits for deliver's own
        const kim = (event: string, at: string, extra: Record<string, unknown>) =>
          JSON.stringify({
            type: "track",
            event,
            messageId: `kim-${event}`,
            timestamp: at,
            context: { traits: { email: "kim@example.com", first_name: "Kim" }, consent: { marketing: true } },
            ...extra
          })
        const deadLetters = newPath("kim-5xx.ndjson")
        // Mailjet fails once preflight has passed: the sign-up is dead-lettered whole.
        const first = yield* Effect.scoped(Effect.gen(function*() {
          const running = yield* start(["deliver", "--dead-letters", deadLetters], env(sim, { MAILJET_MAX_ATTEMPTS: "1" }))
          yield* preflightDone
          yield* sim.setFaults({ errorRate: 1 })
          running.child.stdin.end(`${kim("Signed Up", "2026-11-26T10:00:00Z", { properties: { method: "email" } })}\n`)
          return yield* finished(running)
        }))
        yield* sim.setFaults({})
        expect(outcomes(first.stdout).map((o) => [o["outcome"], o["error"]])).toStrictEqual([["dead-lettered", "MailjetUnavailable"]])
        const second = yield* run(["deliver"], env(sim), `${kim("Unsubscribed", "2026-11-26T10:05:00Z", {})}\n`)
        expect(outcomes(second.stdout).map((o) => [o["outcome"], o["action"]])).toStrictEqual([["delivered", "unsub"]])
        const membership = Effect.map(sim.contacts, (cs) => cs.find((c) => c.email === "kim@example.com"))

        const replay = yield* run(["replay", deadLetters], env(sim))
        expect(replay.code).toBe(0)
        // Two guards agree: kim is unsubscribed in Mailjet (standing consent is demoted), and a newer
        // event was applied since (the first name it wrote stays).
        expect(outcomes(replay.stdout)).toStrictEqual([expect.objectContaining({
          outcome: "delivered",
          action: "addnoforce",
          demoted: expect.stringMatching(/^unsubscribed in Mailjet at /),
          superseded: ["first_name"],
          reason: expect.stringContaining("replayed after a newer event of this contact was applied")
        })])
        const kimNow = yield* membership
        expect(kimNow?.lists.get(LIST_ID)).toBe("unsubscribed")
        // What no newer event wrote still lands; the newer event's time stays the contact's last.
        expect(kimNow?.properties["signup_method"]).toBe("email")
        expect(kimNow?.properties["signal_last_event_at"]).toBe("2026-11-26T10:05:00Z")
      }))
  }
)

/** What the unsubscribe link in a Mailjet email does: the contact is unsubscribed in Mailjet itself. */
const recipientUnsubscribes = (sim: Simulator.SimulatorService, email: string) =>
  Effect.map(
    Effect.promise(() =>
      fetch(`${sim.url}/v3/REST/contactslist/${LIST_ID}/managecontact`, {
        method: "POST",
        headers: {
          authorization: `Basic ${Buffer.from(`${KEY}:${SECRET}`).toString("base64")}`,
          "content-type": "application/json"
        },
        body: JSON.stringify({ Email: email, Action: "unsub" })
      })
    ),
    (res) => res.status
  )

layer(Simulator.layer(simulatorOptions(presetProperties)), { excludeTestServices: true })(
  "CLI (end to end): the consent loop",
  (it) => {
    it.effect("signed up with consent, then unsubscribed by the recipient in Mailjet: an Order Completed with the same consent leaves them unsubscribed (demoted); a Subscribed event subscribes", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        const event = (name: string, extra: Record<string, unknown> = {}) =>
          JSON.stringify({
            type: "track",
            event: name,
            messageId: `lee-${name}`,
            context: { traits: { email: "lee@example.com", first_name: "Lee" }, consent: { marketing: true } },
            ...extra
          })
        expect((yield* run(["deliver"], env(sim), `${event("Signed Up", { properties: { method: "email" } })}\n`)).code).toBe(0)
        const membership = Effect.map(sim.contacts, (cs) => cs.find((c) => c.email === "lee@example.com")?.lists.get(LIST_ID))
        expect(yield* membership).toBe("subscribed")

        // The recipient follows the unsubscribe link in a Mailjet email: Mailjet marks them unsubscribed.
        expect(yield* recipientUnsubscribes(sim, "lee@example.com")).toBe(201)
        expect(yield* membership).toBe("unsubscribed")

        const order = yield* run(["deliver"], env(sim), `${event("Order Completed", { properties: { revenue: 20, currency: "EUR" } })}\n`)
        expect(order.code).toBe(0)
        expect(order.stderr).toContain("1 contacts of the list are unsubscribed in Mailjet")
        expect(outcomes(order.stdout)).toStrictEqual([expect.objectContaining({
          outcome: "delivered",
          action: "addnoforce",
          demoted: expect.stringMatching(/^unsubscribed in Mailjet at /)
        })])
        expect(yield* membership).toBe("unsubscribed")

        const subscribed = yield* run(["deliver"], env(sim), `${event("Subscribed")}\n`)
        expect(outcomes(subscribed.stdout).map((o) => [o["outcome"], o["action"], o["demoted"]])).toStrictEqual([
          ["delivered", "addforce", undefined]
        ])
        expect(yield* membership).toBe("subscribed")

        // MAILJET_RESUBSCRIBE=consent: the literal mapping, for accounts that want it.
        expect(yield* recipientUnsubscribes(sim, "lee@example.com")).toBe(201)
        const literal = yield* run(["deliver"], env(sim, { MAILJET_RESUBSCRIBE: "consent" }), `${event("Identified")}\n`)
        expect(outcomes(literal.stdout).map((o) => [o["action"], o["demoted"]])).toStrictEqual([["addforce", undefined]])
        expect(yield* membership).toBe("subscribed")
      }))
  }
)

describe("simulate as a process", () => {
  it.live("serves the API, and --outage-after / --outage-for answer 503 for the window", () =>
    Effect.promise(async () => {
      const { proc, listening, out } = simulateProcess(["--outage-after", "1", "--outage-for", "1", "--api-key", KEY, "--secret-key", SECRET], {})
      try {
        const url = await listening
        const auth = { authorization: `Basic ${Buffer.from(`${KEY}:${SECRET}`).toString("base64")}` }
        const get = () => fetch(`${url}/v3/REST/contactslist/1`, { headers: auth }).then((r) => r.status)
        expect(await get()).toBe(200)
        const during = await waitForStatus(get, 503)
        expect(during).toBe(503)
        expect(await waitForStatus(get, 200)).toBe(200)
        expect(out()).not.toContain(SECRET)
        const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)))
        proc.kill("SIGTERM")
        expect(await exited).toBe(0)
      } finally {
        proc.kill("SIGKILL")
      }
    }))
})

describe("simulate with real keys exported", () => {
  it.live("uses its own keys, says so, and prints none of the shell's", () =>
    Effect.promise(async () => {
      // What a user who followed "Delivering to Mailjet" has in the shell.
      const { proc, listening, out } = simulateProcess([], { MAILJET_API_KEY: KEY, MAILJET_SECRET_KEY: SECRET })
      try {
        const url = await listening
        expect(out()).toContain("credentials: MAILJET_API_KEY=simulator-key MAILJET_SECRET_KEY=simulator-secret (its own; the shell's MAILJET_* keys are not used)")
        expect(out()).toContain(`try: MAILJET_API_KEY=simulator-key MAILJET_SECRET_KEY=simulator-secret MAILJET_BASE_URL=${url} MAILJET_LIST_ID=1 signal-mailjet deliver`)
        for (const secret of SECRETS) expect(out()).not.toContain(secret)
        const status = (user: string, password: string) =>
          fetch(`${url}/v3/REST/contactslist/1`, {
            headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` }
          }).then((r) => r.status)
        expect(await status("simulator-key", "simulator-secret")).toBe(200)
        expect(await status(KEY, SECRET)).toBe(401)
      } finally {
        proc.kill("SIGKILL")
      }
    }))
})

/** `simulate` on a free port as a process: its URL once it has printed all its start-up lines, and what it printed. */
const simulateProcess = (args: ReadonlyArray<string>, env: Record<string, string>) => {
  const proc = spawn(BIN, ["simulate", "--port", "0", ...args], { env: { PATH: process.env["PATH"] ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] })
  let out = ""
  const listening = new Promise<string>((resolve, reject) => {
    proc.stdout.on("data", (d: Buffer) => {
      out += d.toString()
      const m = /listening on (http:\/\/\S+)[^]*\ntry: .*\n/.exec(out)
      if (m) resolve(m[1]!)
    })
    proc.on("exit", () => reject(new Error(`simulate exited: ${out}`)))
  })
  return { proc, listening, out: () => out }
}

const waitForStatus = async (get: () => Promise<number>, want: number) => {
  for (let i = 0; i < 60; i++) {
    const s = await get()
    if (s === want) return s
    await new Promise((r) => setTimeout(r, 100))
  }
  return get()
}
