/**
 * Readiness explains itself: a worker alone in its group reads at once (no partition had an
 * earlier owner that could still be sending), and one that must wait for a hand-over (its earlier
 * owner is still finishing slow calls) says on /ready and in its log what it waits for and until when.
 */
import { expect, it } from "vitest"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import { createTopic, freePort, produce, startWorker, waitFor, type Worker } from "./support/kafka.js"

const { sim } = fileSimulator({ seed: 9 })
// The earlier owner answers slowly when the group changes: a Mailjet of its own.
const slow = fileSimulator({ seed: 10 })

// A hand-over of 11 s (MAILJET_SHUTDOWN_TIMEOUT + 1 s): long enough to tell waiting from not.
const SHUTDOWN = "10 seconds"

const readyAfter = async (port: string, w: Worker, started: number) => {
  await waitFor(`ready on ${port}`, async () => ((await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.status === 200 ? true : undefined), 60_000)
    .catch((e: unknown) => {
      throw new Error(`${String(e)}; its log ends:\n${w.stderr().split("\n").slice(-20).join("\n")}`)
    })
  return Date.now() - started
}

it("alone in a fresh group, a worker is ready without the hand-over wait; the second one says on /ready and in its log what it waits for, until when", async () => {
  const id = `ready-${Date.now().toString(36)}`
  await createTopic(`delivery-${id}`, 2)
  // Work for the first worker: the newcomer waits for its release, which follows its drain.
  await produce(`delivery-${id}`, Array.from({ length: 400 }, (_, i) => {
    const email = `ready${i}.${id}@example.com`
    return { key: email, value: JSON.stringify({ type: "track", event: "Order Completed", traits: { email }, properties: { revenue: 1, currency: "EUR" } }) }
  }))
  const e1 = await workerEnv(slow.sim(), id, { MAILJET_SHUTDOWN_TIMEOUT: SHUTDOWN, MAILJET_MAX_RPS: "20" })
  const started = Date.now()
  const w1 = startWorker(e1)
  let w2: Worker | undefined
  try {
    // Start-up (preflight, the suppressions topic, the join) takes a few seconds; the hand-over alone would be 11.
    expect(await readyAfter(e1.PORT, w1, started)).toBeLessThan(11_000)
    expect(w1.stderr()).toContain("this worker is the group's only member: no earlier owner can still be sending, so it reads at once")
    expect(w1.stderr()).not.toContain("hand-over: until")

    // Each call of the first worker now takes 3 s: its drain, and so the hand-over, lasts that long.
    await slow.run(slow.sim().setFaults({ latencyMs: 3_000 }))
    const e2 = { ...e1, MAILJET_BASE_URL: sim().url, MAILJET_MAX_RPS: "2000", PORT: String(await freePort()) }
    w2 = startWorker(e2)
    const seen = await waitFor("worker 2 says what it waits for", async () => {
      const r = await fetch(`http://127.0.0.1:${e2.PORT}/ready`).catch(() => undefined)
      if (r === undefined || r.status !== 503) return undefined
      const body = await r.json() as { ready: boolean; waiting?: string }
      return body.waiting === undefined ? undefined : body
    }, 60_000)
    expect(seen.ready).toBe(false)
    const until = /^hand-over: until (\S+), the earlier owners of partitions [\d,]+ may still be finishing their in-flight events \(MAILJET_SHUTDOWN_TIMEOUT \+ 1 s after the group's last change\)$/.exec(seen.waiting!)
    expect(until).not.toBeNull()
    const at = Date.parse(until![1]!)
    expect(at).toBeGreaterThan(Date.now())
    expect(at).toBeLessThan(Date.now() + 12_000)
    expect(w2.stderr()).toContain(seen.waiting)
    // Once read, nothing is said to be waited for.
    await readyAfter(e2.PORT, w2, Date.now())
    const after = await (await fetch(`http://127.0.0.1:${e2.PORT}/ready`)).text()
    expect(after).toBe("ready")
  } finally {
    await slow.run(slow.sim().setFaults({}))
    w1.proc.kill("SIGTERM")
    w2?.proc.kill("SIGTERM")
    await Promise.all([w1.exited, w2?.exited])
  }
}, 120_000)
