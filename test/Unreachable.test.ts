/**
 * Nothing listens at MAILJET_BASE_URL (a typo, the simulator not started): the user hears at the
 * first failure what is retried and where, and the final message points at the address, not at
 * Mailjet's status page.
 */
import { spawn } from "node:child_process"
import { describe, expect, it } from "vitest"
import { BIN, ROOT, runBin } from "./support/bin.js"
import { freePort } from "./support/kafka.js"
import { KEY, SECRET } from "./support/layers.js"

const env = (port: number) => ({ MAILJET_API_KEY: KEY, MAILJET_SECRET_KEY: SECRET, MAILJET_LIST_ID: "1", MAILJET_BASE_URL: `http://127.0.0.1:${port}` })

describe("a MAILJET_BASE_URL where nothing listens", () => {
  it("deliver warns at the first refused connection, naming the variable and the address; then exits 2 with advice that fits", async () => {
    const port = await freePort()
    const started = Date.now()
    let warnedAfter: number | undefined
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(BIN, ["deliver"], { cwd: ROOT, env: { PATH: process.env["PATH"] ?? "", ...env(port) } })
      let stderr = ""
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        stderr += d
        if (warnedAfter === undefined && stderr.includes("Retrying")) warnedAfter = Date.now() - started
      })
      child.stdin.end("{\"type\":\"page\"}\n")
      child.on("close", (code) => resolve({ code, stderr }))
    })
    expect(r.code).toBe(2)
    // At the first failure (the process's own start-up is most of this), not after the 15 s of retries.
    expect(warnedAfter).toBeLessThan(5_000)
    const [warning, ...rest] = r.stderr.split("\n").filter((l) => l.includes(`127.0.0.1:${port}`))
    expect(warning).toContain(`level=WARN`)
    expect(warning).toContain(`Nothing answers at http://127.0.0.1:${port}, the address MAILJET_BASE_URL gives`)
    expect(warning).toContain("Retrying for about 15 s.")
    expect(rest.at(-1)).toMatch(new RegExp(`^signal-mailjet: Nothing answers at http://127\\.0\\.0\\.1:${port}, the address MAILJET_BASE_URL gives \\(transport error: connect ECONNREFUSED .*\\)\\. Check MAILJET_BASE_URL: unset it for Mailjet \\(https://api\\.mailjet\\.com\\), or start the simulator there \\(signal-mailjet simulate\\)\\.$`))
    expect(r.stderr).not.toContain("status.mailjet.com")
    expect(r.stderr).not.toContain("Redelivery is safe")
  }, 60_000)

  it("contact, which only reads, says the same and nothing about redelivery", async () => {
    const r = await runBin(["contact", "ann@example.com"], env(await freePort()))
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/Nothing answers at http:\/\/127\.0\.0\.1:\d+, the address MAILJET_BASE_URL gives/)
    expect(r.stderr).not.toMatch(/[Rr]edelivery/)
  })
})
