/**
 * The pipe law: `deliver`'s outcome lines reach a slow reader whole, one per input event, however
 * the run ends (success, or SIGTERM), per event and in bulk. On Linux stdout to a pipe is written
 * asynchronously, and an exit with writes pending dropped them behind a summary that counted them.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { BIN, ROOT } from "./support/bin.js"
import { fileSimulator } from "./support/fileSimulator.js"
import { KEY, SECRET } from "./support/layers.js"

const { sim } = fileSimulator({ seed: 31 })

const EVENTS = 100_000

/** `EVENTS` lines: every `every`th a sign-up that Mailjet is called for, the rest page views (dropped, no call). */
const input = (name: string, every: number) => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "pipe-law-"))
  const file = Path.join(dir, `${name}.ndjson`)
  const lines: Array<string> = []
  for (let i = 0; i < EVENTS; i++) {
    const email = `${name}-${i}@example.com`
    lines.push(JSON.stringify(
      i % every === 0
        ? { type: "track", event: "Signed Up", messageId: `${name}-${i}`, context: { traits: { email }, consent: { marketing: true } } }
        : { type: "page", name: "Home", messageId: `${name}-${i}`, context: { traits: { email } } }
    ))
  }
  Fs.writeFileSync(file, `${lines.join("\n")}\n`)
  return file
}

interface Read {
  readonly code: number | null
  readonly lines: ReadonlyArray<number>
  readonly stderr: string
}

/**
 * Runs the CLI with stdout on a pipe that the test reads slowly: each chunk, then a pause, so the
 * pipe is full most of the time and the process ends with lines still on their way.
 */
const deliverThroughSlowPipe = (args: ReadonlyArray<string>, env: Record<string, string>, onFirstLines?: (kill: () => void) => void) =>
  new Promise<Read>((resolve, reject) => {
    const child = spawn(BIN, ["deliver", ...args], {
      cwd: ROOT,
      env: { PATH: process.env["PATH"] ?? "", NO_COLOR: "1", MAILJET_API_KEY: KEY, MAILJET_SECRET_KEY: SECRET, MAILJET_LIST_ID: "1", MAILJET_BASE_URL: sim().url, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const lines: Array<number> = []
    let rest = ""
    let stderr = ""
    let exited: number | null | undefined
    let ended = false
    const finish = () => {
      if (exited !== undefined && ended) resolve({ code: exited, lines, stderr })
    }
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      const parts = (rest + d).split("\n")
      rest = parts.pop()!
      for (const p of parts) lines.push((JSON.parse(p) as { line: number }).line)
      if (onFirstLines !== undefined && lines.length >= 1_000) {
        onFirstLines(() => child.kill("SIGTERM"))
        onFirstLines = undefined
      }
      child.stdout.pause()
      setTimeout(() => child.stdout.resume(), 3)
    })
    child.stdout.on("end", () => {
      ended = true
      finish()
    })
    child.on("error", reject)
    child.on("exit", (code) => {
      exited = code
      finish()
    })
  })

/** The law: exactly one line per event read, numbered 1..read in order, and the summary agrees. */
const expectOneLinePerEvent = (r: Read, read: number) => {
  expect(r.lines.length).toBe(read)
  expect(r.lines.every((line, i) => line === i + 1)).toBe(true)
  expect(r.stderr).toContain(`signal-mailjet: ${read} read,`)
}

describe("the pipe law: every outcome line reaches a slow reader", () => {
  it("per event: 100,000 events, one line each, exit 0", async () => {
    const r = await deliverThroughSlowPipe(["--bulk", "off", input("each", 100)], { MAILJET_MAX_RPS: "2000" })
    expect(r.code).toBe(0)
    expectOneLinePerEvent(r, EVENTS)
  }, 240_000)

  it("in bulk: 100,000 events, one line each, exit 0", async () => {
    const r = await deliverThroughSlowPipe(["--bulk", "always", input("bulk", 10)], { MAILJET_MAX_RPS: "2000" })
    expect(r.code).toBe(0)
    expectOneLinePerEvent(r, EVENTS)
  }, 240_000)

  it("stopped by SIGTERM: one line for every event read, the unsent ones not-attempted", async () => {
    // Slow enough that the run is far from its end when the signal comes.
    const r = await deliverThroughSlowPipe(["--bulk", "off", input("term", 1)], { MAILJET_MAX_RPS: "200" }, (kill) => kill())
    const read = Number(/signal-mailjet: (\d+) read,/.exec(r.stderr)?.[1])
    expect(read).toBeGreaterThanOrEqual(1_000)
    expect(read).toBeLessThan(EVENTS)
    expectOneLinePerEvent(r, read)
    expect(r.stderr).toMatch(/to resume: signal-mailjet deliver --from-line \d+/)
  }, 240_000)

  it("every exit flushes first: 2 MB written at once and the exit right after, with codes 0, 1, 2 and 130, reach a slow reader whole", async () => {
    const stdout = Path.join(ROOT, "dist", "Run", "Stdout.js")
    for (const code of [0, 1, 2, 130]) {
      // No waiting on the pipe at all: only the exit's flush stands between these lines and the end.
      const script = `import(${JSON.stringify(stdout)}).then((m) => { process.stdout.write("${"x".repeat(99)}\\n".repeat(20_000)); m.exitFlushed(${code}) })`
      const r = await new Promise<{ code: number | null; lines: number }>((resolve) => {
        const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] })
        let bytes = 0
        child.stdout.on("data", (d: Buffer) => {
          bytes += d.length
          child.stdout.pause()
          setTimeout(() => child.stdout.resume(), 3)
        })
        child.on("close", (exit) => resolve({ code: exit, lines: bytes / 100 }))
      })
      expect(r).toEqual({ code, lines: 20_000 })
    }
  }, 120_000)

  it("a reader that goes away (| head -1) stops the run like SIGTERM: exit 2, a resume line, no crash", async () => {
    const file = input("gone", 1_000_000)
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(BIN, ["deliver", file], {
        cwd: ROOT,
        env: { PATH: process.env["PATH"] ?? "", MAILJET_API_KEY: KEY, MAILJET_SECRET_KEY: SECRET, MAILJET_LIST_ID: "1", MAILJET_BASE_URL: sim().url },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stderr = ""
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
      child.stdout.once("data", () => child.stdout.destroy())
      child.on("close", (code) => resolve({ code, stderr }))
    })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("signal-mailjet: stdout was closed by its reader (EPIPE): stopping")
    expect(r.stderr).toMatch(/to resume: signal-mailjet deliver --from-line \d+/)
    expect(r.stderr).not.toContain("Unhandled 'error'")
  }, 60_000)
})
