/**
 * What a new user trips over first (issue 15), end to end with the built CLI against the
 * simulator over real HTTP: stop and resume, a byte order mark, stdin on a terminal, `-` before
 * options, missing properties stopping the run, `--help` as a pipe shows it, and the metric and
 * log labels of drops and dead letters.
 */
import { Chunk, Effect, ManagedRuntime, Metric, MetricLabel, Stream } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { it as prop } from "@effect/vitest"
import { Schema } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { resumeCommand } from "../src/Cli/RunLines.js"
import { withoutBom } from "../src/Run/Ndjson.js"
import { Delivery } from "../src/Delivery/Delivery.js"
import * as Metrics from "../src/Delivery/Metrics.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { BIN, ROOT, runBin } from "./support/bin.js"
import { freePort } from "./support/kafka.js"
import { capturedLogs, deliveryLayer, KEY, presetProperties, SECRET } from "./support/layers.js"

const LIST_ID = 3
const runtime = ManagedRuntime.make(Simulator.layer({
  apiKey: KEY,
  secretKey: SECRET,
  lists: [{ id: LIST_ID, name: "Signal" }],
  properties: presetProperties,
  seed: 15
}))
let sim: Simulator.SimulatorService
const run = <A>(e: Effect.Effect<A>) => runtime.runPromise(e)
const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "signal-mailjet-i15-"))

beforeAll(async () => {
  sim = await runtime.runPromise(Simulator.Simulator)
})
afterAll(async () => {
  await runtime.dispose()
  Fs.rmSync(tmp, { recursive: true, force: true })
})

/** A simulator of its own, with these contact properties, for the length of `f`. */
const withSimulator = async (
  properties: ReadonlyArray<{ readonly name: string; readonly datatype: Simulator.Datatype }>,
  f: (s: Simulator.SimulatorService) => Promise<void>
) => {
  const own = ManagedRuntime.make(Simulator.layer({ apiKey: KEY, secretKey: SECRET, lists: [{ id: LIST_ID, name: "Signal" }], properties }))
  try {
    await f(await own.runPromise(Simulator.Simulator))
  } finally {
    await own.dispose()
  }
}
const without = (name: string) => presetProperties.filter((p) => p.name !== name)

const env = (extra: Record<string, string> = {}, at: Simulator.SimulatorService = sim): Record<string, string> => ({
  MAILJET_API_KEY: KEY,
  MAILJET_SECRET_KEY: SECRET,
  MAILJET_LIST_ID: String(LIST_ID),
  MAILJET_BASE_URL: at.url,
  MAILJET_MAX_RPS: "1000",
  MAILJET_RETRY_BASE: "10ms",
  ...extra
})

const fresh = () => run(Effect.zipRight(sim.setFaults({}), sim.reset))
const manageBodies = () =>
  run(Effect.map(sim.requests, (rs) => rs.filter((r) => r.path.endsWith("/managecontact")).map((r) => r.body)))
const subscribed = (i: number) =>
  JSON.stringify({ type: "track", event: "Subscribed", messageId: `m-${i}`, traits: { email: `user${i}@example.com` } })
const outcomes = (stdout: string) =>
  stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as { line: number; outcome: string; [k: string]: unknown })
let files = 0
const file = (content: string | Buffer) => {
  const path = Path.join(tmp, `in-${++files}.ndjson`)
  Fs.writeFileSync(path, content)
  return path
}

describe("stop and resume (deliver --from-line)", () => {
  it("SIGINT mid-file: the summary counts the unread lines and prints the command that resumes; running it delivers exactly the rest", async () => {
    await fresh()
    await run(sim.setFaults({ latencyMs: 40 }))
    // Past the reader's 64 KB chunks, so that most of the file is never read; and blank lines,
    // which are not events but keep their line numbers.
    const events = Array.from({ length: 2000 }, (_, i) => subscribed(i))
    const text = events.map((e, i) => (i % 50 === 7 ? `\n${e}` : e)).join("\n") + "\n"
    const input = file(text)
    const lineOf = new Map<number, number>() // event index → its line in the file
    text.split("\n").forEach((l, i) => {
      if (l !== "") lineOf.set(Number(/"m-(\d+)"/.exec(l)![1]), i + 1)
    })
    const deadLetters = Path.join(tmp, "resume-dead.ndjson")
    const args = ["deliver", input, "--concurrency", "4", "--dead-letters", deadLetters]
    // One call per event, so that a few events take long enough for most of the file to be unread.
    const child = spawn(BIN, args, { cwd: ROOT, env: { PATH: process.env["PATH"] ?? "", NO_COLOR: "1", ...env({ MAILJET_BULK: "off" }) } })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d
      // Stop once some events are done: most of the file is still unread.
      if (stdout.split("\n").length > 30 && child.exitCode === null && !child.killed) child.kill("SIGINT")
    })
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
    expect(code).toBe(2)
    const summary = /^signal-mailjet: (\d+) read, (\d+) delivered, 0 dropped, 0 dead-lettered, (\d+) not attempted, (\d+) unread in [\d.]+ s \(stopped: Shutdown\)$/m
      .exec(stderr)
    expect(summary, stderr).not.toBeNull()
    const [read, delivered, notAttempted, unread] = summary!.slice(1).map(Number) as [number, number, number, number]
    const first = outcomes(stdout)
    expect(first.length).toBe(read)
    expect(read + unread).toBe(events.length)
    expect(unread).toBeGreaterThan(0)
    expect(delivered + notAttempted).toBe(read)

    // Resume at the first line without a final outcome (outcomes come in input order).
    const firstUnsettled = first.find((o) => o.outcome === "not-attempted")?.line ?? first.at(-1)!.line + 1
    const resume = /^signal-mailjet: every line before line (\d+) has its outcome; to resume: (.*)$/m.exec(stderr)
    expect(resume, stderr).not.toBeNull()
    expect(Number(resume![1])).toBe(firstUnsettled)
    expect(resume![2]).toBe(`signal-mailjet deliver --from-line ${firstUnsettled} ${input} --concurrency 4 --dead-letters ${deadLetters}`)
    const [program, ...again] = resume![2]!.split(" ")
    expect(program).toBe("signal-mailjet")

    await run(sim.setFaults({}))
    const second = await runBin(again, env())
    expect(second.code).toBe(0)
    const rest = outcomes(second.stdout)
    // Exactly the lines from the resume point on, each once, with their line numbers in the file.
    const expected = [...lineOf.values()].filter((l) => l >= firstUnsettled)
    expect(rest.map((o) => o.line)).toStrictEqual(expected)
    expect(rest.every((o) => o.outcome === "delivered")).toBe(true)
    // Across both runs every event has one final outcome; sent twice only what was in flight at the stop.
    const finalFirst = first.filter((o) => o.outcome !== "not-attempted").map((o) => o.line)
    const final = new Set([...finalFirst.filter((l) => l < firstUnsettled), ...rest.map((o) => o.line)])
    expect([...lineOf.values()].every((l) => final.has(l))).toBe(true)
    const twice = finalFirst.filter((l) => l >= firstUnsettled)
    expect(twice.length).toBeLessThanOrEqual(4)
    const contacts = await run(sim.contacts)
    expect(contacts.length).toBe(events.length)
    expect(contacts.every((c) => c.lists.get(LIST_ID) === "subscribed")).toBe(true)
    expect(second.stderr).not.toContain("unread")
  }, 60_000)

  it("from stdin: the stop says the input must be sent again, with --from-line", async () => {
    await fresh()
    await run(sim.setFaults({ latencyMs: 200 }))
    const child = spawn(BIN, ["deliver", "--concurrency", "2"], { cwd: ROOT, env: { PATH: process.env["PATH"] ?? "", NO_COLOR: "1", ...env() } })
    let stderr = ""
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.stdin.on("error", () => undefined)
    child.stdin.write(Array.from({ length: 20 }, (_, i) => subscribed(i)).join("\n") + "\n")
    // Once the first outcome is out: delivery has started, and the rest is still in flight or waiting.
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()))
    child.kill("SIGINT")
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve))
    expect(code).toBe(2)
    expect(stderr).toMatch(
      /^signal-mailjet: every line before line (\d+) has its outcome; standard input cannot be read again, so to resume, send the same input again to: signal-mailjet deliver --from-line \1 --concurrency 2$/m
    )
    // Nothing to count on stdin: no unread figure.
    expect(stderr).not.toContain("unread")
  }, 30_000)

  it("--from-line skips the lines before it and keeps the file's line numbers", async () => {
    await fresh()
    const input = file(`${subscribed(1)}\n\n${subscribed(2)}\n${subscribed(3)}\n`)
    const r = await runBin(["deliver", "--from-line", "3", input], env())
    expect(r.code).toBe(0)
    expect(outcomes(r.stdout).map((o) => [o.line, o["messageId"], o.outcome])).toStrictEqual([
      [3, "m-2", "delivered"],
      [4, "m-3", "delivered"]
    ])
    expect((await manageBodies()).map((b) => (b as { Email: string }).Email)).toStrictEqual(["user2@example.com", "user3@example.com"])
    expect((await runBin(["deliver", "--from-line", "0", input], env())).code).toBe(2)
  })
})

describe("natural inputs", () => {
  const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${subscribed(1)}\n${subscribed(2)}\n`)])

  it("a UTF-8 byte order mark before line 1 is not part of the event, from a file or stdin", async () => {
    for (const via of ["file", "stdin"] as const) {
      await fresh()
      const r = via === "file" ? await runBin(["deliver", file(bom)], env()) : await runBin(["deliver"], env(), bom.toString("utf8"))
      expect(r.code, r.stderr).toBe(0)
      expect(outcomes(r.stdout).map((o) => [o.line, o.outcome])).toStrictEqual([[1, "delivered"], [2, "delivered"]])
    }
  })

  it("`deliver - --dead-letters f`: stdin named before the options", async () => {
    await fresh()
    const deadLetters = Path.join(tmp, "dash.ndjson")
    const r = await runBin(["deliver", "-", "--dead-letters", deadLetters], env(), `${subscribed(1)}\n{oops\n`)
    expect(r.stderr).not.toContain("unknown argument")
    expect(r.code).toBe(1)
    expect(outcomes(r.stdout).map((o) => o.outcome)).toStrictEqual(["delivered", "dead-lettered"])
    expect(JSON.parse(Fs.readFileSync(deadLetters, "utf8"))).toMatchObject({ error: "MalformedEvent", line: 2, text: "{oops" })
  })

  it("stdin on a terminal: a one-line hint on stderr; piped: none", async () => {
    // `script` gives the process a pseudo-terminal; its stdin here is empty, so the run ends at once.
    const tty = spawnSync("script", ["-qec", `${BIN} deliver --dry-run`, "/dev/null"], {
      cwd: ROOT,
      env: { PATH: process.env["PATH"] ?? "", NO_COLOR: "1" },
      input: "",
      encoding: "utf8",
      timeout: 20_000
    })
    expect(tty.stdout).toContain("signal-mailjet: reading events from stdin (one JSON per line); Ctrl-D to end, or pass a file")
    const piped = await runBin(["deliver", "--dry-run"], {}, `${subscribed(1)}\n`)
    expect(piped.code).toBe(0)
    expect(piped.stderr).not.toContain("reading events from stdin")
  })
})

describe("preflight: properties the preset writes and Mailjet lacks", () => {
  const signedUp = JSON.stringify({
    type: "track",
    event: "Signed Up",
    messageId: "s-1",
    properties: { method: "email" },
    context: { traits: { email: "ana@example.com" }, consent: { marketing: true } }
  })

  it("stop before sending, exit 2, naming the property and both flags; --create-missing-properties creates it; --allow sends without it", () =>
    withSimulator(without("signup_method"), async (lacking) => {
      const sent = () =>
        Effect.runPromise(Effect.map(lacking.requests, (rs) => rs.filter((r) => r.path.endsWith("/managecontact")).length))
      const stopped = await runBin(["deliver"], env({}, lacking), `${signedUp}\n`)
      expect(stopped.code).toBe(2)
      expect(stopped.stdout).toBe("")
      expect(stopped.stderr).toContain("contact properties the preset writes are not defined in Mailjet: signup_method (str). Nothing was sent.")
      expect(stopped.stderr).toMatch(/--create-missing-properties.*--allow-missing-properties.*MAILJET_MISSING_PROPERTIES/)
      expect(await sent()).toBe(0)

      const both = await runBin(["deliver", "--create-missing-properties", "--allow-missing-properties"], env({}, lacking), `${signedUp}\n`)
      expect(both.code).toBe(2)
      expect(both.stderr).toContain("not both")
      expect(await sent()).toBe(0)

      const allowed = await runBin(["deliver"], env({ MAILJET_MISSING_PROPERTIES: "allow" }, lacking), `${signedUp}\n`)
      expect(allowed.code).toBe(1)
      expect(outcomes(allowed.stdout)).toMatchObject([{ outcome: "delivered", partial: ["signup_method"], error: "PropertyMissing" }])

      const created = await runBin(["deliver", "--create-missing-properties"], env({}, lacking), `${signedUp}\n`)
      expect(created.code).toBe(0)
      expect(created.stderr).toContain(`signal-mailjet: created contact property "signup_method" (str)`)
      expect(outcomes(created.stdout)).toMatchObject([{ outcome: "delivered", status: 201 }])
      const ana = await Effect.runPromise(lacking.contact("ana@example.com"))
      expect(ana._tag === "Some" ? ana.value.properties["signup_method"] : undefined).toBe("email")
    }))

  it("serve stops too, exit 2, before it reads Kafka", () =>
    withSimulator(without("signup_method"), async (lacking) => {
      const r = await runBin(["serve"], env({ KAFKA_BROKERS: "127.0.0.1:1", SIGNAL_INTEGRATION_ID: "i15-missing", PORT: String(await freePort()) }, lacking))
      expect(r.code).toBe(2)
      expect(r.stderr).toContain(
        "signal-mailjet serve: stopped: contact properties the preset writes are not defined in Mailjet: signup_method (str)"
      )
    }))
})

describe("metrics and logs of drops and dead letters", () => {
  it("a Signed Up without email counts as event=\"Signed Up\", not unmapped; an InvalidContact's warning carries the masked email", () =>
    // Mailjet holds last_order_value as an int, so 12.5 is refused: InvalidContact.
    withSimulator([...without("last_order_value"), { name: "last_order_value", datatype: "int" }], async (intOrders) => {
      capturedLogs.length = 0
      const lines = [
        JSON.stringify({ type: "track", event: "Signed Up", messageId: "n-1", properties: { method: "email" } }),
        JSON.stringify({
          type: "track",
          event: "Order Completed",
          messageId: "o-1",
          properties: { revenue: 12.5, currency: "EUR" },
          traits: { email: "olga@example.com" }
        })
      ]
      const reason = "no email in traits, context.traits or properties"
      const counter = (event: string) =>
        Metrics.outcomes.pipe(Metric.taggedWithLabels([
          MetricLabel.make("outcome", "dropped"),
          MetricLabel.make("event", event),
          MetricLabel.make("reason", reason)
        ]))
      const before = await Effect.runPromise(Metric.value(counter("Signed Up")))
      const unmapped = await Effect.runPromise(Metric.value(counter("unmapped")))
      const results = await Effect.runPromise(
        Effect.flatMap(Delivery, (d) => Stream.runCollect(d.run(Stream.fromIterable(lines)))).pipe(
          Effect.provide(deliveryLayer(intOrders.url, {}, { listId: LIST_ID }))
        )
      )
      const [drop, order] = Chunk.toReadonlyArray(results).map((r) => r.outcome)
      expect(drop).toStrictEqual({ outcome: "dropped", reason })
      expect((await Effect.runPromise(Metric.value(counter("Signed Up")))).count - before.count).toBe(1)
      expect((await Effect.runPromise(Metric.value(counter("unmapped")))).count).toBe(unmapped.count)
      expect(JSON.stringify(order)).toContain("InvalidContact")
      const warnings = capturedLogs.filter((l) => l.includes("error=InvalidContact"))
      expect(warnings.length).toBe(1)
      expect(warnings[0]).toContain("email=o***@example.com")
      expect(capturedLogs.join("\n")).not.toContain("olga@example.com")
    }))
})

describe("--help", () => {
  const ESC = "\u001b["
  const commands = ["deliver", "serve", "check", "replay", "simulate", "demo", "contact"] as const

  it("piped, or with NO_COLOR on a terminal: plain text; each command's usage names the program, without filler or a repeated option", async () => {
    for (const command of commands) {
      const r = await runBin([command, "--help"], { NO_COLOR: "" })
      expect(r.code).toBe(0)
      expect(r.stdout).not.toContain(ESC)
      expect(r.stdout).toMatch(new RegExp(`^USAGE\\n\\nsignal-mailjet ${command}\\b`))
      expect(r.stdout).not.toMatch(/^\$ /m)
      for (const filler of ["A user-defined piece of text.", "An integer.", "A true or false value.", "This setting is optional.", "A file."]) {
        expect(r.stdout, `${command}: ${filler}`).not.toContain(filler)
      }
      // Each option once.
      const options = r.stdout.split("\n").filter((l) => /^--[a-z-]+/.test(l)).map((l) => l.split(" ")[0])
      expect(new Set(options).size, `${command}: ${options.join(" ")}`).toBe(options.length)
    }
    const top = await runBin(["--help"], { NO_COLOR: "" })
    expect(top.stdout).not.toContain(ESC)
    for (const command of commands) expect(top.stdout).toMatch(new RegExp(`^${command}$`, "m"))
    // A terminal shows colour unless NO_COLOR is set.
    const tty = (noColor: boolean) =>
      spawnSync("script", ["-qec", `${BIN} deliver --help`, "/dev/null"], {
        cwd: ROOT,
        env: { PATH: process.env["PATH"] ?? "", ...(noColor ? { NO_COLOR: "1" } : {}) },
        input: "",
        encoding: "utf8",
        timeout: 20_000
      }).stdout
    expect(tty(false)).toContain(ESC)
    expect(tty(true)).not.toContain(ESC)
  })

  it("each command lists its environment variables with their defaults; simulate its options' defaults", async () => {
    const help = async (command: string) => (await runBin([command, "--help"], {})).stdout
    const environment = (text: string) => text.slice(text.indexOf("\nENVIRONMENT\n"))
    const deliver = environment(await help("deliver"))
    for (const line of ["MAILJET_API_KEY\n\n  required", "MAILJET_LIST_ID\n\n  required", "MAILJET_CONCURRENCY\n\n  default 8", "MAILJET_TIMEOUT\n\n  default 10s", "MAILJET_MISSING_PROPERTIES\n\n  default fail"]) {
      expect(deliver).toContain(line)
    }
    const serve = environment(await help("serve"))
    for (const line of ["KAFKA_BROKERS\n\n  required", "PORT\n\n  default 8080", "KAFKA_TOPIC\n\n  default delivery-{SIGNAL_INTEGRATION_ID}"]) expect(serve).toContain(line)
    expect(environment(await help("replay"))).toContain("KAFKA_BROKERS")
    expect(environment(await help("check"))).toContain("MAILJET_API_KEY")
    const simulate = await help("simulate")
    // Its keys are options, not MAILJET_*: a shell may hold real keys there (README "Try it locally").
    expect(simulate).toMatch(/^--api-key text\n\n  The API key the simulator accepts \(default simulator-key\)/m)
    expect(simulate).toMatch(/^--secret-key text\n\n  The secret key the simulator accepts \(default simulator-secret\)/m)
    expect(environment(simulate)).not.toContain("MAILJET_API_KEY")
    for (const d of ["default 3030", "(default 1)", "(default 30)", "(default 0)"]) expect(simulate).toContain(d)
    expect(await help("deliver")).toContain("--log-level all | trace | debug | info | warning | error | fatal | none")
  })
})

describe("laws", () => {
  // Text with line breaks and byte order marks inside it, cut into chunks anywhere (empty ones too).
  const Text = Schema.String.annotations({
    arbitrary: () => (fc) => fc.array(fc.constantFrom("a", "{", "\"", "\n", "\r\n", "\uFEFF", "é", " "), { maxLength: 40 }).map((cs) => cs.join(""))
  })
  const Cuts = Schema.Array(Schema.Int.pipe(Schema.between(0, 41)))
  const chunked = (text: string, cuts: ReadonlyArray<number>) => {
    const at = [...new Set([0, ...cuts.map((c) => Math.min(c, text.length)), text.length])].sort((a, b) => a - b)
    return ["", ...at.slice(1).map((end, i) => text.slice(at[i], end))]
  }
  const split = (chunks: ReadonlyArray<string>, bom: (s: Stream.Stream<string>) => Stream.Stream<string>) =>
    Effect.runSync(Stream.runCollect(Stream.splitLines(bom(Stream.fromIterable(chunks))))).pipe(Chunk.toReadonlyArray)
  const asIs = (s: Stream.Stream<string>) => s

  prop.prop(
    "law: a byte order mark before the text is dropped however the text is cut, and nothing else is",
    { text: Text, cuts: Cuts },
    ({ cuts, text }) => {
      if (text.startsWith("\uFEFF")) return
      const lines = split([text], asIs)
      expect(split(chunked(`\uFEFF${text}`, cuts), withoutBom)).toStrictEqual(lines)
      expect(split(chunked(text, cuts), withoutBom)).toStrictEqual(lines)
    }
  )

  // Words a user may type: spaces, quotes, globs, an old --from-line, in any order around `deliver`.
  const Word = Schema.String.annotations({
    arbitrary: () => (fc) =>
      fc.oneof(
        fc.constantFrom("--from-line", "--from-line=7", "12", "-", "--dead-letters", "a b.ndjson", "it's", "*", "$HOME", "x\"y", ""),
        fc.string({ maxLength: 6 })
      )
  })
  prop.prop(
    "law: the resume command, read by a shell, is this run's arguments with --from-line N after deliver and no other --from-line",
    { after: Schema.Array(Word), line: Schema.Int.pipe(Schema.between(1, 1e6)) },
    ({ after, line }) => {
      const clean = after.filter((w) => !w.includes("\u0000"))
      const argv = ["deliver", ...clean]
      const command = resumeCommand(argv, line)
      const words = spawnSync("sh", ["-c", `printf '%s\\0' ${command}`], { encoding: "utf8" }).stdout.split("\0").slice(0, -1)
      const kept: Array<string> = []
      for (let i = 0; i < clean.length; i++) {
        if (clean[i] === "--from-line") i++
        else if (!clean[i]!.startsWith("--from-line=")) kept.push(clean[i]!)
      }
      expect(words).toStrictEqual(["signal-mailjet", "deliver", "--from-line", String(line), ...kept])
    },
    { fastCheck: { numRuns: 60 } }
  )
})
