/** Starting and talking to the bench's child processes: the simulator, the contenders, the CLI. */
import { fork, spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { once } from "node:events"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import type {
  ContenderKind,
  ContenderResult,
  ContenderSetup,
  FromContender,
  FromSimulator,
  SimulatorSetup,
  SimulatorStats,
  ToContender,
  ToSimulator
} from "./protocol.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
/** The repository root: this file runs from dist-scripts/scripts/bench/. */
export const root = Path.resolve(here, "../../..")

/** Waits for the first message that `pick` accepts, or fails when the child exits first or time is up. */
const expect = <M, A>(child: ChildProcess, pick: (m: M) => A | undefined, what: string, timeoutMs: number): Promise<A> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${what}: no answer within ${timeoutMs / 1000} s`)), timeoutMs)
    const onMessage = (m: M) => {
      const a = pick(m)
      if (a !== undefined) done(undefined, a)
    }
    const onExit = (code: number | null) => done(new Error(`${what}: the process exited (${code}) first`))
    const done = (error: Error | undefined, a?: A) => {
      clearTimeout(timer)
      child.off("message", onMessage)
      child.off("exit", onExit)
      if (error !== undefined) reject(error)
      else resolve(a as A)
    }
    child.on("message", onMessage)
    child.once("exit", onExit)
  })

export interface SimulatorProcess {
  readonly url: string
  readonly reset: () => Promise<void>
  readonly stats: () => Promise<SimulatorStats>
  readonly stop: () => Promise<void>
}

export const startSimulator = async (setup: SimulatorSetup, options: { readonly heapMb?: number } = {}): Promise<SimulatorProcess> => {
  const child = fork(Path.join(here, "simulator-process.js"), [], {
    env: { ...process.env, BENCH_SIMULATOR: JSON.stringify(setup) },
    execArgv: options.heapMb === undefined ? [] : [`--max-old-space-size=${options.heapMb}`],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const port = await expect(child, (m: FromSimulator) => (m.type === "ready" ? m.port : undefined), "simulator start", 30_000)
  const ask = <A>(m: ToSimulator, pick: (r: FromSimulator) => A | undefined) => {
    const answer = expect(child, pick, `simulator ${m.type}`, 60_000)
    child.send(m)
    return answer
  }
  return {
    url: `https://127.0.0.1:${port}`,
    reset: () => ask({ type: "reset" }, (r) => (r.type === "reset-done" ? true : undefined)).then(() => undefined),
    stats: () => ask({ type: "stats" }, (r) => (r.type === "stats" ? r.stats : undefined)),
    stop: async () => {
      if (child.exitCode !== null) return
      const exited = once(child, "exit")
      child.send({ type: "stop" } satisfies ToSimulator)
      await exited
    }
  }
}

/**
 * Runs one contender in its own process: it warms up, the simulator is reset, then the measured
 * run. Resolves with its result and the simulator's counters for the measured run.
 */
export const runContender = async (
  setup: ContenderSetup,
  sim: SimulatorProcess | undefined,
  caPath: string,
  timeoutMs: number,
  nodeArgs: ReadonlyArray<string> = []
): Promise<{ readonly result: ContenderResult; readonly server: SimulatorStats | undefined }> => {
  const child = fork(Path.join(here, "contender.js"), [], {
    env: { ...process.env, BENCH_CONTENDER: JSON.stringify(setup), NODE_EXTRA_CA_CERTS: caPath },
    execArgv: [...nodeArgs],
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const failed = (m: FromContender) => (m.type === "error" ? new Error(`${setup.kind}: ${m.message}`) : undefined)
  const warm = await expect(child, (m: FromContender) => (m.type === "warm" ? true : failed(m)), `${setup.kind} warm-up`, timeoutMs)
  if (warm instanceof Error) throw warm
  await sim?.reset()
  const answer = expect(child, (m: FromContender) => (m.type === "result" ? m.result : failed(m)), `${setup.kind} run`, timeoutMs)
  child.send({ type: "go" } satisfies ToContender)
  const result = await answer.catch((e: unknown) => {
    child.kill("SIGKILL")
    throw e
  })
  if (result instanceof Error) throw result
  if (child.exitCode === null) await once(child, "exit")
  return { result, server: sim === undefined ? undefined : await sim.stats() }
}

export interface CliRun {
  readonly exitCode: number | null
  readonly seconds: number
  /** From GNU time, else polled from /proc (VmHWM): kB. */
  readonly maxRssKb: number | undefined
  readonly cpuSeconds: number | undefined
  /** Outcome lines on stdout, and how many say delivered. */
  readonly lines: number
  readonly delivered: number
  /** Outcome lines that say `"via":"bulk"`. */
  readonly viaBulk: number
  readonly summary: string
}

const GNU_TIME = "/usr/bin/time"

/** The node flags and environment of the bin's first line (`#!/usr/bin/env -S VAR=… node --flag …`). */
const binFirstLine = (bin: string) => {
  const words = (Fs.readFileSync(bin, "utf8").split("\n", 1)[0] ?? "").split(/\s+/)
  const env: Record<string, string> = {}
  for (const w of words.slice(0, words.indexOf("node"))) {
    const eq = w.indexOf("=")
    if (eq > 0) env[w.slice(0, eq)] = w.slice(eq + 1)
  }
  return { flags: words.slice(words.indexOf("node") + 1).filter((w) => w.startsWith("--")), env }
}

/**
 * `dist/bin.js deliver FILE` as a child process, run as a user runs it (its first line picks node
 * and the heap's bounds); with `nodeArgs` (profiling), `node FLAGS ARGS dist/bin.js`, FLAGS and
 * its environment read from that first line, so a profile is of the run as a user runs it. Stdout
 * goes to a file, counted afterwards.
 */
export const runCli = async (options: {
  readonly eventsPath: string
  readonly env: Readonly<Record<string, string>>
  readonly workDir: string
  readonly timeoutMs: number
  readonly nodeArgs?: ReadonlyArray<string>
  /** `node dist/bin.js`, as container images often run it: without the bin's first line (its V8 flags and malloc setting). */
  readonly plain?: boolean
}): Promise<CliRun> => {
  const outPath = Path.join(options.workDir, "cli-stdout.ndjson")
  const timePath = Path.join(options.workDir, "cli-time.txt")
  Fs.rmSync(timePath, { force: true })
  const out = Fs.openSync(outPath, "w")
  const useTime = Fs.existsSync(GNU_TIME)
  const bin = Path.join(root, "dist/bin.js")
  const profiled = options.nodeArgs !== undefined && options.nodeArgs.length > 0 && options.plain !== true
  const first = profiled ? binFirstLine(bin) : { flags: [], env: {} }
  const node = !profiled && options.plain !== true
    ? [bin, "deliver", options.eventsPath]
    : [process.execPath, ...first.flags, ...(options.nodeArgs ?? []), bin, "deliver", options.eventsPath]
  const [command, ...args] = useTime ? [GNU_TIME, "-v", "-o", timePath, ...node] : node
  const started = performance.now()
  const child = spawn(command!, args, {
    env: { ...process.env, ...first.env, ...options.env },
    stdio: ["ignore", out, "pipe"]
  })
  let stderr = ""
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    stderr += d
  })
  // Without GNU time: VmHWM is the peak, so the last poll before the exit is close to it.
  let polledKb: number | undefined
  const poll = useTime ? undefined : setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(Fs.readFileSync(`/proc/${child.pid}/status`, "utf8"))
      if (m !== null) polledKb = Number(m[1])
    } catch {
      // gone
    }
  }, 50)
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs)
  const [code] = (await once(child, "exit")) as [number | null]
  const seconds = (performance.now() - started) / 1000
  clearTimeout(timer)
  if (poll !== undefined) clearInterval(poll)
  Fs.closeSync(out)

  let maxRssKb = polledKb
  let cpuSeconds: number | undefined
  if (useTime && Fs.existsSync(timePath)) {
    const t = Fs.readFileSync(timePath, "utf8")
    const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(t)
    const user = /User time \(seconds\): ([\d.]+)/.exec(t)
    const sys = /System time \(seconds\): ([\d.]+)/.exec(t)
    if (rss !== null) maxRssKb = Number(rss[1])
    if (user !== null && sys !== null) cpuSeconds = Number(user[1]) + Number(sys[1])
  }

  let lines = 0
  let delivered = 0
  let viaBulk = 0
  const reader = Readline.createInterface({ input: Fs.createReadStream(outPath), crlfDelay: Infinity })
  for await (const line of reader) {
    if (line === "") continue
    lines++
    if (line.includes("\"outcome\":\"delivered\"")) delivered++
    if (line.includes("\"via\":\"bulk\"")) viaBulk++
  }
  Fs.rmSync(outPath, { force: true })
  const summary = stderr.split("\n").find((l) => / read, \d+ delivered/.test(l)) ?? stderr.trim().split("\n").slice(-3).join(" | ")
  return { exitCode: code, seconds, maxRssKb, cpuSeconds, lines, delivered, viaBulk, summary }
}

export type { ContenderKind }
