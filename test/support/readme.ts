/** The README's own command blocks, taken from it and run as written by `sh` in the repository. */
import { spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { expect } from "vitest"
import { ROOT } from "./bin.js"

const readme = readFileSync(`${ROOT}/README.md`, "utf8")

/** The first fenced block after `heading`, as written. */
export const blockAfter = (heading: string, fence = "sh"): string => {
  const at = readme.indexOf(heading)
  expect(at, `README has no "${heading}"`).toBeGreaterThanOrEqual(0)
  const start = readme.indexOf("```" + fence + "\n", at)
  const end = readme.indexOf("\n```", start + 1)
  return readme.slice(start + fence.length + 4, end)
}

/** Runs a README block in a shell of its own, as a process group: its background jobs end with it. */
export const shell = (script: string, timeoutMs = 60_000, env: Readonly<Record<string, string>> = {}) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn("sh", ["-c", script], {
      cwd: ROOT,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", NO_COLOR: "1", npm_config_offline: "true", ...env },
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
