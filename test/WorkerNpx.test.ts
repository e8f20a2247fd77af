/**
 * `npx signal-mailjet serve &` then `kill $!` (the README's way to try it): npm does not pass the
 * SIGTERM on, and ends without it. The worker must still leave the group and exit, or its port and
 * its place in the group stay taken and the next start fails.
 */
import { spawn } from "node:child_process"
import { expect, it } from "vitest"
import { ROOT } from "./support/bin.js"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import { brokers, createTopic, waitFor } from "./support/kafka.js"

const { sim } = fileSimulator({ seed: 7 })

it("npx signal-mailjet serve, the npx process killed with SIGTERM: the worker leaves the group and exits within the shutdown timeout", async () => {
  const id = `npx-${Date.now().toString(36)}`
  await createTopic(`delivery-${id}`, 1)
  const env = await workerEnv(sim(), id, { MAILJET_SHUTDOWN_TIMEOUT: "2 seconds" })
  const npx = spawn("npx", ["signal-mailjet", "serve"], {
    cwd: ROOT,
    // In the package's own directory npx installs it first, running its `prepare` (the build), which
    // removes dist while other test files spawn dist/bin.js: ignore-scripts keeps the build global setup's.
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", npm_config_offline: "true", npm_config_ignore_scripts: "true", KAFKA_BROKERS: brokers().join(","), HTTP_HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "ignore", "pipe"]
  })
  let stderr = ""
  npx.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d))
  // The worker writes to the pipe it got from npx: its end is the worker's exit, once npx is gone.
  const closed = new Promise<number>((resolve) => npx.stderr.on("close", () => resolve(Date.now())))
  const health = `http://127.0.0.1:${env["PORT"]}`
  try {
    await waitFor("ready", async () => ((await fetch(`${health}/ready`).catch(() => undefined))?.status === 200 ? true : undefined), 60_000)
      .catch((e: unknown) => {
        throw new Error(`${String(e)}; its log ends:\n${stderr.split("\n").slice(-20).join("\n")}`)
      })
    const killed = Date.now()
    npx.kill("SIGTERM")
    const gone = await closed
    expect(stderr).toContain("signal-mailjet: its parent (npm, pid ")
    expect(stderr).toContain("shut down: offsets committed, group left")
    // MAILJET_SHUTDOWN_TIMEOUT + 1 s.
    expect(gone - killed).toBeLessThan(3_000)
    expect(await fetch(`${health}/health`).then(() => "answered", () => "refused")).toBe("refused")
  } finally {
    npx.kill("SIGKILL")
  }
}, 120_000)
