/**
 * `npm run bench`: how fast this project delivers, against what.
 *
 * The throughput runs' server is a stand-in in its own process over HTTPS (a certificate made for
 * this run, trusted through NODE_EXTRA_CA_CERTS): plain `node:https` answering managecontact with a
 * fixed 201, the simulator behind it for preflight's few reads. It costs a few µs per request (the
 * table prints its CPU per request as the check), so the client is what is measured, and the
 * headline is each client's own CPU per event (user + system of its process), not events/s. Every contender sends the same N `Signed Up` events (unique
 * emails) at the same concurrency, each in a process of its own:
 *   (1) a raw undici keep-alive loop posting managecontact bodies built beforehand (the ceiling),
 *   (2) node-mailjet, Mailjet's SDK, making the same calls,
 *   (3a) this project's path in process (`Delivery.run` over the lines),
 *   (3b) the CLI, `dist/bin.js deliver FILE` (run as a user runs it, through its first line).
 * Then: mapping alone (`prepare`, no I/O); peak RSS of `deliver` over a 1,000,000-event file;
 * the rate reached against a simulator that allows R requests per second with 50 ms latency;
 * bulk: `deliver` (MAILJET_BULK=auto) over B events for K contacts, with MAILJET_MAX_RPS and the
 * simulator's per-key limit both at 10 calls/s and bulk jobs of 0, 2, 10, 30 and 60 s, against the
 * per-event path (MAILJET_BULK=off) measured on the same file's first 20 s worth, same budget.
 *
 * lists: `deliver` of 20 events (mixed consent) against a list of L contacts, 1% unsubscribed, at
 * 10 calls/s: cold (no state directory) and warm (the list's view kept there by `check`); the
 * consent guarantee checked on the outcomes (the unsubscribed demoted, the sign-ups addforce).
 *
 * Every run checks conservation: each event delivered once, the simulator holding N contacts.
 * Options: --events N --concurrency C --runs K --warmup W --rss-events M --rss-runs K --rate R --rate-seconds S
 * --latency MS --only throughput,mapping,rss,rate,bulk,lists --keep (keep the temp dir)
 * --bulk-events B --bulk-contacts K --bulk-rps R --bulk-job-ms MS,MS,… (one bulk run per job duration)
 * --list-contacts L (default 200,000)
 * --short (development: 5,000 events, one run, throughput only)
 * --contenders undici,node-mailjet,delivery,cli --profile DIR (a V8 CPU profile of every contender and CLI run into DIR, for `--cpu-prof` reading).
 * Results also go to bench-out/bench-<time>.json.
 */
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { parseArgs } from "node:util"
import { makeCert } from "./bench/cert.js"
import { writeEvents } from "./bench/events.js"
import { root, runCli, runContender, startSimulator, type CliRun } from "./bench/processes.js"
import { seededEmail, seededUnsubscribed } from "../src/Simulator/Core.js"
import type { ContenderKind, ContenderResult, SimulatorStats } from "./bench/protocol.js"

const { values: flags } = parseArgs({
  options: {
    events: { type: "string", default: "50000" },
    concurrency: { type: "string", default: "32" },
    runs: { type: "string", default: "3" },
    warmup: { type: "string", default: "2000" },
    "rss-events": { type: "string", default: "1000000" },
    "rss-runs": { type: "string", default: "1" },
    rate: { type: "string", default: "200" },
    "rate-seconds": { type: "string", default: "20" },
    latency: { type: "string", default: "50" },
    only: { type: "string", default: "throughput,mapping,rss,rate,bulk,lists" },
    "list-contacts": { type: "string", default: "200000" },
    "bulk-events": { type: "string", default: "1000000" },
    "bulk-contacts": { type: "string", default: "200000" },
    "bulk-rps": { type: "string", default: "10" },
    "bulk-job-ms": { type: "string", default: "0,2000,10000,30000,60000" },
    keep: { type: "boolean", default: false },
    short: { type: "boolean", default: false },
    profile: { type: "string" },
    contenders: { type: "string", default: "undici,node-mailjet,node-mailjet-no-keepalive,delivery,cli" }
  },
  strict: true
})

const int = (name: keyof typeof flags): number => {
  const n = Number(flags[name])
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number (got ${String(flags[name])})`)
  return n
}
const N = flags.short ? 5000 : int("events")
const C = int("concurrency")
const RUNS = flags.short ? 1 : Math.max(1, int("runs"))
const WARMUP = Math.min(flags.short ? 500 : int("warmup"), N)
const RSS_EVENTS = int("rss-events")
const RSS_RUNS = Math.max(1, int("rss-runs"))
const R = int("rate")
const RATE_SECONDS = int("rate-seconds")
const LATENCY = int("latency")
const BULK_EVENTS = int("bulk-events")
const BULK_CONTACTS = Math.max(1, int("bulk-contacts"))
const BULK_RPS = Math.max(1, int("bulk-rps"))
const BULK_JOB_MS = (flags["bulk-job-ms"] ?? "").split(",").map((x) => {
  const n = Number(x.trim())
  if (!Number.isInteger(n) || n < 0) throw new Error(`--bulk-job-ms takes whole numbers of milliseconds, comma-separated (got ${x})`)
  return n
})
const LIST_CONTACTS = int("list-contacts")
/** The lists part's budget: calls a second, at the simulator and the CLI. */
const LIST_RPS = 10
const only = new Set((flags.short ? "throughput" : flags.only ?? "").split(",").map((s) => s.trim()))
const contenders = new Set((flags.contenders ?? "").split(",").map((s) => s.trim()))
const nodeArgs = flags.profile === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${Path.resolve(flags.profile)}`]

const API_KEY = "bench-key"
const SECRET_KEY = "bench-secret"
const LIST_ID = 7
/** No contender may take longer than this (the 1M-event run takes about 6 minutes); the bench stops rather than hang. */
const TIMEOUT_MS = 15 * 60_000
/** How long the bulk case's per-event baseline sends (at its budget, so BULK_RPS × this many events). */
const BASELINE_SECONDS = 20

const log = (s: string) => process.stderr.write(`bench: ${s}\n`)
const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

interface Sample {
  readonly rate: number
  /** Peak RSS, kB (the CLI only). */
  readonly maxRssKb?: number | undefined
  readonly clientCpuUsPerEvent: number | undefined
  readonly serverCpuUsPerEvent: number | undefined
  readonly connections: number | undefined
}

type Row = "undici" | "node-mailjet" | "node-mailjet-no-keepalive" | "delivery" | "cli" | "mapping"
const LABELS: Readonly<Record<Row, string>> = {
  undici: "(1) raw undici keep-alive loop (ceiling)",
  "node-mailjet": "(2) node-mailjet, same calls",
  "node-mailjet-no-keepalive": "(2′) node-mailjet without keep-alive (Node ≤ 18's default agent)",
  delivery: "(3a) Delivery.run in process",
  cli: "(3b) CLI `deliver` as a process",
  mapping: "mapping alone (`prepare`, no I/O)"
}

const conservation = (what: string, events: number, ok: number, server: SimulatorStats | undefined) => {
  const problems: Array<string> = []
  if (ok !== events) problems.push(`${events - ok} of ${events} events not delivered`)
  if (server !== undefined) {
    if ((server.byStatus["201"] ?? 0) !== events) problems.push(`simulator answered 201 ${server.byStatus["201"] ?? 0} times for ${events} events`)
    if (server.contacts !== events) problems.push(`simulator holds ${server.contacts} contacts for ${events} events`)
  }
  if (problems.length > 0) throw new Error(`${what}: conservation broken: ${problems.join("; ")}`)
}

/** Peak RSS (kB) of `dist/bin.js --help`, by GNU time: what loading the CLI alone costs. */
const peakRssOfHelp = (): number | undefined => {
  if (!Fs.existsSync("/usr/bin/time")) return undefined
  const r = spawnSync("/usr/bin/time", ["-f", "%M", Path.join(root, "dist/bin.js"), "--help"], { encoding: "utf8" })
  const kb = Number(r.stderr.trim().split("\n").pop())
  return Number.isFinite(kb) ? kb : undefined
}

const main = async () => {
  const nodeMailjetVersion = (JSON.parse(Fs.readFileSync(Path.join(root, "node_modules/node-mailjet/package.json"), "utf8")) as { version: string }).version
  const cpus = Os.cpus()
  const machine = `${cpus.length} cores (${cpus[0]?.model.trim() ?? "unknown CPU"}), ${fmt(Os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${Os.type()} ${Os.release()}`
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "signal-mailjet-bench-"))
  log(`work dir ${dir}`)
  const started = performance.now()
  const samples = new Map<Row, Array<Sample>>()
  const add = (row: Row, s: Sample) => samples.set(row, [...(samples.get(row) ?? []), s])
  const report: Record<string, unknown> = { machine, events: N, concurrency: C, runs: RUNS, warmup: WARMUP, nodeMailjet: nodeMailjetVersion }
  try {
    const cert = makeCert(dir)
    const eventsPath = Path.join(dir, "events.ndjson")
    const warmupPath = Path.join(dir, "warmup.ndjson")
    // (2′) opens a TLS connection per call: a tenth of the events tell its rate as well, in a tenth of the time.
    const fewPath = Path.join(dir, "events-few.ndjson")
    const FEW = Math.max(1, Math.min(N, Math.ceil(N / 10)))
    await writeEvents(eventsPath, N, "bench")
    await writeEvents(fewPath, FEW, "bench")
    await writeEvents(warmupPath, WARMUP, "warmup")
    const simSetup = { keyPath: cert.keyPath, certPath: cert.certPath, apiKey: API_KEY, secretKey: SECRET_KEY, listId: LIST_ID }
    const cliEnv = (url: string, maxRps: number): Record<string, string> => ({
      MAILJET_API_KEY: API_KEY,
      MAILJET_SECRET_KEY: SECRET_KEY,
      MAILJET_LIST_ID: String(LIST_ID),
      MAILJET_BASE_URL: url,
      MAILJET_CONCURRENCY: String(C),
      MAILJET_MAX_RPS: String(maxRps),
      NODE_EXTRA_CA_CERTS: cert.certPath
    })
    const contender = (kind: ContenderKind, url: string) => ({
      kind,
      url,
      apiKey: API_KEY,
      secretKey: SECRET_KEY,
      listId: LIST_ID,
      eventsPath: kind === "node-mailjet-no-keepalive" ? fewPath : eventsPath,
      warmupPath,
      concurrency: C
    })
    const sample = (r: ContenderResult, server: SimulatorStats | undefined): Sample => ({
      rate: r.events / r.seconds,
      clientCpuUsPerEvent: (r.cpuMs * 1000) / r.events,
      serverCpuUsPerEvent: server === undefined ? undefined : (server.cpuMs * 1000) / r.events,
      connections: server?.connections
    })

    // ---- throughput: every contender, the same events, the same concurrency
    if (only.has("throughput") || only.has("mapping")) {
      const sim = only.has("throughput") ? await startSimulator({ ...simSetup, faults: {}, standIn: true }) : undefined
      try {
        const order: Array<Row> = [
          ...(only.has("throughput") ? (["undici", "node-mailjet", "node-mailjet-no-keepalive", "delivery", "cli"] as const).filter((c) => contenders.has(c)) : []),
          ...(only.has("mapping") ? ["mapping"] as const : [])
        ]
        for (let run = 1; run <= RUNS; run++) {
          // Rotate the order, so no contender always goes first (or last) on a warm machine.
          const rotated = [...order.slice((run - 1) % order.length), ...order.slice(0, (run - 1) % order.length)]
          for (const row of rotated) {
            if (row === "cli") {
              await sim!.reset()
              const cli = await runCli({ eventsPath, env: cliEnv(sim!.url, 1e9), workDir: dir, timeoutMs: TIMEOUT_MS, nodeArgs })
              const server = await sim!.stats()
              if (cli.exitCode !== 0) throw new Error(`cli: exit ${cli.exitCode}: ${cli.summary}`)
              conservation("cli", N, cli.delivered, server)
              if (cli.lines !== N) throw new Error(`cli: ${cli.lines} outcome lines for ${N} events`)
              add("cli", {
                rate: N / cli.seconds,
                maxRssKb: cli.maxRssKb,
                clientCpuUsPerEvent: cli.cpuSeconds === undefined ? undefined : (cli.cpuSeconds * 1e6) / N,
                serverCpuUsPerEvent: (server.cpuMs * 1000) / N,
                connections: server.connections
              })
              log(`run ${run}: cli ${fmt(N / cli.seconds)} events/s (${cli.summary})`)
            } else {
              const { result, server } = await runContender(
                contender(row, sim?.url ?? ""),
                row === "mapping" ? undefined : sim,
                cert.certPath,
                TIMEOUT_MS,
                nodeArgs
              )
              conservation(row, row === "node-mailjet-no-keepalive" ? FEW : N, result.ok, server)
              add(row, sample(result, server))
              log(`run ${run}: ${row} ${fmt(result.events / result.seconds)} events/s`)
            }
          }
        }
      } finally {
        await sim?.stop()
      }
    }

    // ---- peak RSS of deliver over a large file (once by default: it takes about 6 minutes)
    const rssRuns: Array<CliRun> = []
    let plainRss: CliRun | undefined
    let embeddedRss: ContenderResult | undefined
    const helpKb = only.has("rss") && RSS_EVENTS > 0 ? peakRssOfHelp() : undefined
    if (only.has("rss") && RSS_EVENTS > 0) {
      const bigPath = Path.join(dir, "big.ndjson")
      log(`writing ${fmt(RSS_EVENTS)} events`)
      await writeEvents(bigPath, RSS_EVENTS, "rss")
      try {
        for (let run = 1; run <= RSS_RUNS; run++) {
          // The simulator keeps every contact: give it room (its memory is not what is measured).
          const sim = await startSimulator({ ...simSetup, faults: {} }, { heapMb: 8192 })
          try {
            const cli = await runCli({ eventsPath: bigPath, env: cliEnv(sim.url, 1e9), workDir: dir, timeoutMs: TIMEOUT_MS })
            const server = await sim.stats()
            if (cli.exitCode !== 0) throw new Error(`rss: exit ${cli.exitCode}: ${cli.summary}`)
            conservation("rss", RSS_EVENTS, cli.delivered, server)
            rssRuns.push(cli)
            log(`rss run ${run}: ${fmt((cli.maxRssKb ?? 0) / 1024)} MB peak for ${fmt(RSS_EVENTS)} events, ${fmt(RSS_EVENTS / cli.seconds)} events/s`)
          } finally {
            await sim.stop()
          }
        }
        // The same file without the bin's flags: `node dist/bin.js`, and the layer embedded in a host
        // process (the in-process contender, `Delivery.run`), once each.
        const sim = await startSimulator({ ...simSetup, faults: {} }, { heapMb: 8192 })
        try {
          const plain = await runCli({ eventsPath: bigPath, env: cliEnv(sim.url, 1e9), workDir: dir, timeoutMs: TIMEOUT_MS, plain: true })
          const server = await sim.stats()
          if (plain.exitCode !== 0) throw new Error(`rss, node dist/bin.js: exit ${plain.exitCode}: ${plain.summary}`)
          conservation("rss, node dist/bin.js", RSS_EVENTS, plain.delivered, server)
          plainRss = plain
          log(`rss, node dist/bin.js (no flags): ${fmt((plain.maxRssKb ?? 0) / 1024)} MB peak, ${fmt(RSS_EVENTS / plain.seconds)} events/s`)
          await sim.reset()
          const { result } = await runContender(
            { ...contender("delivery", sim.url), eventsPath: bigPath },
            sim,
            cert.certPath,
            TIMEOUT_MS
          )
          if (result.ok !== RSS_EVENTS) throw new Error(`rss, embedded: ${result.ok} of ${RSS_EVENTS} delivered`)
          embeddedRss = result
          log(`rss, embedded (Delivery.run in a plain node process): ${fmt(result.maxRssKb / 1024)} MB peak, ${fmt(RSS_EVENTS / result.seconds)} events/s`)
        } finally {
          await sim.stop()
        }
      } finally {
        Fs.rmSync(bigPath, { force: true })
      }
    }

    // ---- against a rate limit: R requests per second, 50 ms latency
    interface Limited {
      readonly run: CliRun
      readonly events: number
      readonly server: SimulatorStats
      readonly sendingRate: number
    }
    const limitedRuns: Array<Limited> = []
    if (only.has("rate") && R > 0) {
      const events = R * RATE_SECONDS
      const ratePath = Path.join(dir, "rate.ndjson")
      await writeEvents(ratePath, events, "rate")
      for (let run = 1; run <= RUNS; run++) {
        const sim = await startSimulator({ ...simSetup, faults: { maxRps: R, latencyMs: LATENCY } })
        try {
          // The pacer against a limit is the per-event path's: `auto` would send these events as bulk jobs.
          const cli = await runCli({ eventsPath: ratePath, env: { ...cliEnv(sim.url, R), MAILJET_BULK: "off" }, workDir: dir, timeoutMs: TIMEOUT_MS })
          const server = await sim.stats()
          if (cli.exitCode !== 0) throw new Error(`rate: exit ${cli.exitCode}: ${cli.summary}`)
          conservation("rate", events, cli.delivered, server)
          const window = (server.lastOkAt - server.firstOkAt) / 1000
          const sendingRate = window > 0 ? (events - 1) / window : 0
          limitedRuns.push({ run: cli, events, server, sendingRate })
          log(`rate run ${run}: ${fmt(sendingRate, 1)}/s while sending (R=${R}), ${server.byStatus["429"] ?? 0} 429s${
            server.tooManyAt.length > 0 ? ` at ${server.tooManyAt.map((t) => `${((t - server.firstOkAt) / 1000).toFixed(2)}`).join(", ")} s` : ""
          }`)
        } finally {
          await sim.stop()
        }
      }
    }

    // ---- lists: a large list's start-up, cold and warm
    interface ListRun {
      readonly label: string
      readonly seconds: number
      readonly byStatus: Readonly<Record<string, number>>
    }
    const listRuns: Array<ListRun> = []
    if (only.has("lists") && LIST_CONTACTS > 0) {
      const sim = await startSimulator(
        { ...simSetup, faults: { maxRps: LIST_RPS }, seedContacts: { count: LIST_CONTACTS, unsubscribedRatio: 0.01 } },
        { heapMb: 8192 }
      )
      try {
        const stateDir = Path.join(dir, "lists-state")
        const eventsPath = Path.join(dir, "lists.ndjson")
        const unsubscribed: Array<number> = []
        const subscribed: Array<number> = []
        for (let n = 1; n <= LIST_CONTACTS && (unsubscribed.length < 5 || subscribed.length < 10); n++) {
          if (seededUnsubscribed(n, 0.01)) unsubscribed.push(n)
          else if (subscribed.length < 10) subscribed.push(n)
        }
        const event = (i: number, name: string, email: string, consent: boolean) => JSON.stringify({
          type: "track",
          event: name,
          messageId: `lists-${i}`,
          context: { traits: { email }, ...(consent ? { consent: { marketing: true } } : {}) },
          ...(name === "Order Completed" ? { properties: { revenue: 20, currency: "EUR" } } : {})
        })
        // Sign-ups of new contacts, consent granted to the unsubscribed and to the subscribed, none.
        const events = [
          ...[0, 1, 2, 3, 4].map((i) => event(i, "Signed Up", `new-${i}@example.com`, true)),
          ...unsubscribed.slice(0, 5).map((n, i) => event(5 + i, "Order Completed", seededEmail(n), true)),
          ...subscribed.slice(0, 5).map((n, i) => event(10 + i, "Order Completed", seededEmail(n), true)),
          ...subscribed.slice(5, 10).map((n, i) => event(15 + i, "Order Completed", seededEmail(n), false))
        ]
        Fs.writeFileSync(eventsPath, events.join("\n") + "\n")
        const env = { ...process.env, ...cliEnv(sim.url, LIST_RPS), MAILJET_STATE_DIR: stateDir }
        const bin = Path.join(root, "dist/bin.js")
        for (const warm of [false, true]) {
          Fs.rmSync(stateDir, { recursive: true, force: true })
          await sim.reset()
          if (warm) {
            const check = spawnSync(process.execPath, [bin, "check"], { env, encoding: "utf8" })
            if (check.status !== 0) throw new Error(`lists: check exited ${check.status}: ${check.stderr}`)
            await sim.reset()
          }
          const t0 = performance.now()
          const run = spawnSync(process.execPath, [bin, "deliver", eventsPath], { env, encoding: "utf8" })
          const seconds = (performance.now() - t0) / 1000
          if (run.status !== 0) throw new Error(`lists: deliver exited ${run.status}: ${run.stderr}`)
          const outcomes = run.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>)
          if (outcomes.length !== events.length || outcomes.some((o) => o["outcome"] !== "delivered")) {
            throw new Error(`lists: not every event delivered: ${run.stdout}`)
          }
          // The consent guarantee, on a large list: the unsubscribed demoted, the new contacts' sign-ups addforce.
          const bad = outcomes.filter((o, i) =>
            i < 5 ? o["action"] !== "addforce" : i < 10 ? o["action"] !== "addnoforce" || typeof o["demoted"] !== "string" : false
          )
          if (bad.length > 0) throw new Error(`lists: consent broken: ${JSON.stringify(bad)}`)
          const server = await sim.stats()
          const label = warm ? "warm (state kept by `check`)" : "cold (no state)"
          log(`lists, ${label}: ${fmt(seconds, 2)} s, calls ${JSON.stringify(server.byStatus)}`)
          listRuns.push({ label, seconds, byStatus: server.byStatus })
        }
      } finally {
        await sim.stop()
      }
    }

    // ---- bulk: many events per call under a 10 calls/s budget
    interface BulkRun {
      readonly run: CliRun
      readonly server: SimulatorStats
      /** The per-event path (`MAILJET_BULK=off`) on the first events of the same file, same budget: events/s while sending. */
      readonly perEvent: number
      readonly jobMs: number
      /** The same run as `node dist/bin.js`, without the bin's flags (the first job duration only). */
      readonly plain?: CliRun
    }
    const bulkRuns: Array<BulkRun> = []
    if (only.has("bulk") && BULK_EVENTS > 0) {
      const bulkPath = Path.join(dir, "bulk.ndjson")
      const baselinePath = Path.join(dir, "bulk-baseline.ndjson")
      log(`writing ${fmt(BULK_EVENTS)} events for ${fmt(BULK_CONTACTS)} contacts`)
      await writeEvents(bulkPath, BULK_EVENTS, "bulk", BULK_CONTACTS)
      try {
        // The baseline, same budget, a simulator of its own: one call per event over the file's first 20 s worth.
        const base = await startSimulator({ ...simSetup, faults: { maxRps: BULK_RPS } })
        let perEvent = 0
        try {
          const few = Math.min(BULK_EVENTS, BULK_RPS * BASELINE_SECONDS)
          await writeEvents(baselinePath, few, "bulk", BULK_CONTACTS)
          const off = await runCli({ eventsPath: baselinePath, env: { ...cliEnv(base.url, BULK_RPS), MAILJET_BULK: "off" }, workDir: dir, timeoutMs: TIMEOUT_MS })
          const offServer = await base.stats()
          if (off.exitCode !== 0) throw new Error(`bulk baseline: exit ${off.exitCode}: ${off.summary}`)
          conservation("bulk baseline", few, off.delivered, offServer)
          if (off.viaBulk !== 0) throw new Error(`bulk baseline: ${off.viaBulk} events went via bulk with MAILJET_BULK=off`)
          // While sending: start-up left out, which makes the baseline faster and the ratio smaller.
          const window = (offServer.lastOkAt - offServer.firstOkAt) / 1000
          perEvent = window > 0 ? (few - 1) / window : 0
          log(`bulk baseline: ${fmt(perEvent, 2)} events/s while sending, one call per event (${fmt(few)} events), calls ${JSON.stringify(offServer.byStatus)}${
            offServer.tooManyAt.length > 0 ? `, 429s at ${offServer.tooManyAt.map((t) => ((t - offServer.firstOkAt) / 1000).toFixed(2)).join(", ")} s` : ""
          }`)
        } finally {
          await base.stop()
        }
        for (const jobMs of BULK_JOB_MS) {
        const sim = await startSimulator({ ...simSetup, faults: { maxRps: BULK_RPS, jobDurationMs: jobMs } }, { heapMb: 8192 })
        try {
          const cli = await runCli({
            eventsPath: bulkPath,
            env: { ...cliEnv(sim.url, BULK_RPS), MAILJET_BULK: "auto" },
            workDir: dir,
            timeoutMs: TIMEOUT_MS,
            nodeArgs
          })
          const server = await sim.stats()
          if (cli.exitCode !== 0) throw new Error(`bulk: exit ${cli.exitCode}: ${cli.summary}`)
          if (cli.delivered !== BULK_EVENTS || cli.viaBulk !== BULK_EVENTS) {
            throw new Error(`bulk: ${cli.delivered} delivered, ${cli.viaBulk} via bulk, of ${BULK_EVENTS} events`)
          }
          if (server.contacts !== Math.min(BULK_CONTACTS, BULK_EVENTS)) throw new Error(`bulk: simulator holds ${server.contacts} contacts`)
          log(`bulk, ${fmt(jobMs / 1000, 1)} s jobs: ${fmt(BULK_EVENTS / cli.seconds)} events/s, ${fmt((cli.maxRssKb ?? 0) / 1024)} MB peak, calls ${JSON.stringify(server.byStatus)}`)
          // The first job duration once more as `node dist/bin.js` (no V8 flags, no malloc setting).
          let plain: CliRun | undefined
          if (bulkRuns.length === 0) {
            const again = await startSimulator({ ...simSetup, faults: { maxRps: BULK_RPS, jobDurationMs: jobMs } }, { heapMb: 8192 })
            try {
              plain = await runCli({ eventsPath: bulkPath, env: { ...cliEnv(again.url, BULK_RPS), MAILJET_BULK: "auto" }, workDir: dir, timeoutMs: TIMEOUT_MS, plain: true })
              if (plain.exitCode !== 0 || plain.viaBulk !== BULK_EVENTS) throw new Error(`bulk, node dist/bin.js: exit ${plain.exitCode}, ${plain.viaBulk} of ${BULK_EVENTS} via bulk: ${plain.summary}`)
              log(`bulk, ${fmt(jobMs / 1000, 1)} s jobs, node dist/bin.js (no flags): ${fmt((plain.maxRssKb ?? 0) / 1024)} MB peak, ${fmt(BULK_EVENTS / plain.seconds)} events/s`)
            } finally {
              await again.stop()
            }
          }
          bulkRuns.push({ run: cli, server, perEvent, jobMs, ...(plain === undefined ? {} : { plain }) })
        } finally {
          await sim.stop()
        }
        }
      } finally {
        Fs.rmSync(bulkPath, { force: true })
        Fs.rmSync(baselinePath, { force: true })
      }
    }

    // ---- the table
    const out: Array<string> = []
    const medianOf = (row: Row, f: (s: Sample) => number | undefined) => {
      const xs = (samples.get(row) ?? []).map(f).filter((x): x is number => x !== undefined)
      return xs.length === 0 ? undefined : median(xs)
    }
    const rate = (row: Row) => medianOf(row, (s) => s.rate)
    out.push(`signal-mailjet bench — ${machine}`)
    out.push(`${fmt(N)} Signed Up events (unique emails), concurrency ${C}, medians of ${RUNS} run(s); a stand-in server (fixed 201 over HTTPS) in its own process on the same cores`)
    out.push("")
    if (samples.size > 0) {
      out.push("| contender | client CPU µs/event | events/s | stand-in CPU µs/request | TLS connections |")
      out.push("|---|---:|---:|---:|---:|")
    }
    for (const row of ["undici", "node-mailjet", "node-mailjet-no-keepalive", "delivery", "cli", "mapping"] as const) {
      if (!samples.has(row)) continue
      const cell = (x: number | undefined, d = 0) => (x === undefined ? "–" : fmt(x, d))
      const label = row === "node-mailjet"
        ? `(2) node-mailjet ${nodeMailjetVersion}, same calls`
        : row === "node-mailjet-no-keepalive"
        ? `(2′) node-mailjet ${nodeMailjetVersion} without keep-alive (Node ≤ 18's default agent; ${fmt(Math.max(1, Math.min(N, Math.ceil(N / 10))))} events)`
        : LABELS[row]
      out.push(`| ${label} | ${cell(medianOf(row, (s) => s.clientCpuUsPerEvent))} | ${cell(rate(row))} | ${cell(medianOf(row, (s) => s.serverCpuUsPerEvent))} | ${cell(medianOf(row, (s) => s.connections))} |`)
    }
    const ratios: Record<string, number> = {}
    // CPU per event is the headline: lower is better, so each target is a ceiling.
    const cpu = (row: Row) => medianOf(row, (s) => s.clientCpuUsPerEvent)
    const ratioLine = (a: Row, b: Row, ceiling: number | undefined) => {
      const x = cpu(a)
      const y = cpu(b)
      if (x === undefined || y === undefined) return
      const r = x / y
      ratios[`cpu:${a}/${b}`] = r
      const goal = ceiling === undefined ? "(context, no target)" : `≤ ${ceiling}×`
      const verdict = ceiling === undefined ? "" : r <= ceiling ? "met" : "NOT met"
      out.push(`| client CPU per event, ${LABELS[a].split(" ")[0]} ÷ ${LABELS[b].split(" ")[0]} | ${fmt(r, 2)}× | ${goal} | ${verdict} |`)
    }
    if (samples.has("delivery") || samples.has("cli")) {
      out.push("")
      out.push("| ratio | value | target | |")
      out.push("|---|---:|---|---|")
      ratioLine("delivery", "undici", 1.5)
      ratioLine("cli", "undici", 2)
      ratioLine("cli", "node-mailjet", 0.5)
      ratioLine("delivery", "node-mailjet", undefined)
      ratioLine("cli", "node-mailjet-no-keepalive", undefined)
    }
    if (rssRuns.length > 0 || limitedRuns.length > 0 || bulkRuns.length > 0 || listRuns.length > 0) {
      out.push("")
      out.push("| measure | value | target | |")
      out.push("|---|---:|---|---|")
    }
    if (rssRuns.length > 0) {
      const mb = median(rssRuns.map((r) => r.maxRssKb ?? 0)) / 1024
      const speed = median(rssRuns.map((r) => RSS_EVENTS / r.seconds))
      out.push(`| peak RSS of \`deliver\`, ${fmt(RSS_EVENTS)} events (${rssRuns.length === 1 ? "one run" : `median of ${rssRuns.length}`}) | ${fmt(mb)} MB (${fmt(speed)} events/s) | ≤ 150 MB | ${mb <= 150 ? "met" : "NOT met"} |`)
      if (plainRss !== undefined) {
        out.push(`| … the same as \`node dist/bin.js deliver\` (no V8 flags, no malloc setting; one run) | ${fmt((plainRss.maxRssKb ?? 0) / 1024)} MB (${fmt(RSS_EVENTS / plainRss.seconds)} events/s) | (context) | |`)
      }
      if (embeddedRss !== undefined) {
        out.push(`| … the layer embedded: \`Delivery.run\` in a plain node process (one run) | ${fmt(embeddedRss.maxRssKb / 1024)} MB (${fmt(RSS_EVENTS / embeddedRss.seconds)} events/s) | (context) | |`)
      }
      const small = medianOf("cli", (s) => s.maxRssKb)
      if (small !== undefined) out.push(`| peak RSS of \`deliver\`, ${fmt(N)} events (the throughput runs) | ${fmt(small / 1024)} MB | (context) | |`)
      if (helpKb !== undefined) out.push(`| peak RSS of \`signal-mailjet --help\` (the modules loaded, no work) | ${fmt(helpKb / 1024)} MB | (context) | |`)
    }
    if (limitedRuns.length > 0) {
      const rate1 = median(limitedRuns.map((l) => l.sendingRate))
      const wall = median(limitedRuns.map((l) => l.events / l.run.seconds))
      const share = rate1 / R
      const tooMany = limitedRuns.map((l) => l.server.byStatus["429"] ?? 0)
      const lost = limitedRuns.map((l) => l.events - l.run.delivered)
      const events = limitedRuns[0]!.events
      out.push(`| rate reached, limit R=${R}/s with ${LATENCY} ms latency (${fmt(events)} events, median of ${limitedRuns.length}) | ${fmt(rate1, 1)}/s = ${fmt(share, 3)} R (${fmt(wall, 1)}/s incl. start-up) | ≥ 0.9 R | ${share >= 0.9 ? "met" : "NOT met"} |`)
      out.push(`| 429s seen / events lost, per run | ${tooMany.join(", ")} / ${lost.join(", ")} | none lost | ${lost.every((x) => x === 0) ? "met" : "NOT met"} |`)
    }
    for (const b of bulkRuns) {
      const speed = BULK_EVENTS / b.run.seconds
      const perEvent = b.perEvent
      const calls = Object.values(b.server.byStatus).reduce((a, n) => a + n, 0)
      const mb = (b.run.maxRssKb ?? 0) / 1024
      out.push(`| bulk \`deliver\`, ${fmt(BULK_EVENTS)} events for ${fmt(BULK_CONTACTS)} contacts, ${BULK_RPS} calls/s, ${fmt(b.jobMs / 1000, 1)} s jobs | ${fmt(speed)} events/s | ≥ 5,000 | ${speed >= 5000 ? "met" : "NOT met"} |`)
      out.push(`| … ÷ the per-event path under the same budget (\`--bulk off\`, measured: ${fmt(perEvent, 2)} events/s) | ${fmt(speed / perEvent)}× | ≥ 500× | ${speed / perEvent >= 500 ? "met" : "NOT met"} |`)
      out.push(`| … peak RSS | ${fmt(mb)} MB | ≤ 150 MB | ${mb <= 150 ? "met" : "NOT met"} |`)
      if (b.plain !== undefined) {
        out.push(`| … peak RSS as \`node dist/bin.js deliver\` (no V8 flags, no malloc setting) | ${fmt((b.plain.maxRssKb ?? 0) / 1024)} MB (${fmt(BULK_EVENTS / b.plain.seconds)} events/s) | (context) | |`)
      }
      if (b.run.cpuSeconds !== undefined) {
        const us = (b.run.cpuSeconds * 1e6) / BULK_EVENTS
        out.push(`| … client CPU per event, through the bin (start-up included) | ${fmt(us, 1)} µs | ≤ 25 µs | ${us <= 25 ? "met" : "NOT met"} |`)
      }
      out.push(`| … calls in all (${Object.entries(b.server.byStatus).map(([s, n]) => `${n}× ${s}`).join(", ")}), per contact | ${fmt(calls)}, ${fmt(calls / BULK_CONTACTS, 4)} | (context) | |`)
      // What limits it: calls per job, jobs in flight (Little's law: jobs a second × a job's life), and
      // the call budget's ceiling: 95% of the budget, a job's calls each, its contacts.
      const posts = b.server.byStatus["201"] ?? 0
      const perJob = posts === 0 ? 0 : calls / posts
      const inFlight = (posts / b.run.seconds) * (b.jobMs / 1000 + 1)
      const ceiling = posts === 0 ? 0 : ((0.95 * BULK_RPS) / perJob) * (BULK_EVENTS / posts)
      out.push(`| … calls a job; jobs in flight (about); events a job; the budget's ceiling (95% of ${BULK_RPS}/s ÷ calls a job × events a job) | ${fmt(perJob, 2)}; ${fmt(inFlight, 1)}; ${fmt(posts === 0 ? 0 : BULK_EVENTS / posts)}; ${fmt(ceiling)} events/s (reached ${fmt(ceiling === 0 ? 0 : (100 * speed) / ceiling)}%) | (context) | |`)
    }
    for (const l of listRuns) {
      const calls = Object.values(l.byStatus).reduce((a, n) => a + n, 0)
      out.push(`| \`deliver\` of 20 events (mixed consent), list of ${fmt(LIST_CONTACTS)} contacts, 1% unsubscribed, ${LIST_RPS} calls/s, ${l.label} | ${fmt(l.seconds, 2)} s (${calls} calls: ${Object.entries(l.byStatus).map(([s, n]) => `${n}× ${s}`).join(", ")}) | ≤ 5 s | ${l.seconds <= 5 ? "met" : "NOT met"} |`)
    }
    out.push("")
    out.push(`${fmt((performance.now() - started) / 1000)} s in all. Reproduce: npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`)
    process.stdout.write(out.join("\n") + "\n")

    Object.assign(report, {
      lists: listRuns.map((l) => ({ contacts: LIST_CONTACTS, rps: LIST_RPS, ...l })),
      samples: Object.fromEntries(samples),
      ratios,
      bulk: bulkRuns.map((b) => ({
        events: BULK_EVENTS,
        contacts: BULK_CONTACTS,
        rps: BULK_RPS,
        jobMs: b.jobMs,
        seconds: b.run.seconds,
        perEventBaseline: b.perEvent,
        maxRssKb: b.run.maxRssKb,
        cpuSeconds: b.run.cpuSeconds,
        byStatus: b.server.byStatus
      })),
      rss: { events: RSS_EVENTS, helpKb, runs: rssRuns.map((r) => ({ maxRssKb: r.maxRssKb, seconds: r.seconds, cpuSeconds: r.cpuSeconds })) },
      rate: {
        limit: R,
        latencyMs: LATENCY,
        runs: limitedRuns.map((l) => ({
          events: l.events,
          sendingRate: l.sendingRate,
          wallSeconds: l.run.seconds,
          byStatus: l.server.byStatus,
          delivered: l.run.delivered
        }))
      }
    })
    const outDir = Path.join(root, "bench-out")
    Fs.mkdirSync(outDir, { recursive: true })
    Fs.writeFileSync(Path.join(outDir, `bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), JSON.stringify(report, null, 2) + "\n")
  } finally {
    if (flags.keep) log(`kept ${dir}`)
    else Fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
  process.exit(1)
})
