/**
 * The README's commands, taken from the README itself and run as written by `sh` in the
 * repository (where `npx signal-mailjet` is this package's own bin; offline, so npx can never
 * fetch anything). Which blocks run where: the local try-out here; the install line and the
 * embedding example in Package.test.ts; `npm ci` and `npm test` in .ci/run; `npm start` (the demo)
 * in Cli.test.ts; `scripts/kafka topic|produce|consume` in KafkaTools.test.ts.
 */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { expect, it } from "vitest"
import { ROOT } from "./support/bin.js"

const readme = readFileSync(`${ROOT}/README.md`, "utf8")

/** The first fenced block after `heading`, as written. */
const blockAfter = (heading: string, fence = "sh"): string => {
  const at = readme.indexOf(heading)
  expect(at, `README has no "${heading}"`).toBeGreaterThanOrEqual(0)
  const start = readme.indexOf("```" + fence + "\n", at)
  const end = readme.indexOf("\n```", start + 1)
  return readme.slice(start + fence.length + 4, end)
}

/** Runs a README block in a shell of its own, as a process group: its background jobs end with it. */
const shell = (script: string, timeoutMs = 60_000) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn("sh", ["-c", script], {
      cwd: ROOT,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", NO_COLOR: "1", npm_config_offline: "true" },
      detached: true
    })
    let stdout = ""
    let stderr = ""
    let code: number | null = null
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    const end = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal)
      } catch {
        // the group has ended already
      }
    }
    const timer = setTimeout(() => end("SIGKILL"), timeoutMs)
    child.on("error", reject)
    // The block's last command is done: what it left in the background (the simulator) is stopped.
    child.on("exit", (c) => {
      code = c
      end("SIGTERM")
    })
    child.on("close", () => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

it("\"Try it locally with no Mailjet account\": the simulator in the background, then deliver of the examples", async () => {
  const block = blockAfter("Try it locally with no Mailjet account:")
  expect(block).toContain("npx signal-mailjet simulate --port 3030 --preset-properties &")
  const r = await shell(block)
  const outcomes = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { line: number; outcome: string })
  // One outcome per example event, in order; the examples include events dropped on purpose.
  expect(outcomes.map((o) => o.line), r.stderr).toStrictEqual(Array.from({ length: 12 }, (_, i) => i + 1))
  expect(outcomes.filter((o) => o.outcome === "delivered").length).toBeGreaterThan(0)
  expect(outcomes.filter((o) => o.outcome === "not-attempted" || o.outcome === "dead-lettered")).toStrictEqual([])
  expect(r.stdout).toContain("Mailjet simulator listening on http://127.0.0.1:3030")
  expect(r.stderr).toMatch(/^signal-mailjet: 12 read, \d+ delivered, \d+ dropped, 0 dead-lettered, 0 not attempted in/m)
  expect(r.code).toBe(0)
}, 90_000)

it("the summary and resume lines the README shows are the ones deliver prints", () => {
  const block = blockAfter("**Stop and resume.**", "text")
  const [summary, resume] = block.split("\n")
  expect(summary).toMatch(
    /^signal-mailjet: \d+ read, \d+ delivered, \d+ dropped, \d+ dead-lettered, \d+ not attempted, \d+ unread in [\d.]+ s \(stopped: Shutdown\)$/
  )
  expect(resume).toMatch(/^signal-mailjet: every line before line (\d+) has its outcome; to resume: signal-mailjet deliver --from-line \1 /)
})
