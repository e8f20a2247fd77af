/** The built CLI (`dist/bin.js`) as a user runs it: a process of its own, with only the environment given. */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export const ROOT = fileURLToPath(new URL("../..", import.meta.url))
export const BIN = fileURLToPath(new URL("../../dist/bin.js", import.meta.url))

export interface BinResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs to the end with `stdin` as its whole input; killed after `timeoutMs`. */
export const runBin = (
  args: ReadonlyArray<string>,
  env: Readonly<Record<string, string>>,
  stdin = "",
  timeoutMs = 30_000
): Promise<BinResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { cwd: ROOT, env: { PATH: process.env["PATH"] ?? "", NO_COLOR: "1", ...env } })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d))
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("error", reject)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.on("error", () => undefined)
    child.stdin.end(stdin)
  })
