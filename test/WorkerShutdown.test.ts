/**
 * SIGTERM reaches every phase of `serve`, not only the code that waits for it: while preflight
 * retries an unreachable Mailjet, while the broker cannot be reached, while a new owner waits for
 * its hand-over, and while a bulk job is watched. Each ends with exit 0 within
 * MAILJET_SHUTDOWN_TIMEOUT + 1 s, and commits nothing that is not done.
 */
import { describe, expect, it } from "vitest"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import { committedOffsets, createTopic, freePort, produce, startWorker, waitFor, type Worker } from "./support/kafka.js"

const { sim, run } = fileSimulator({ seed: 41 })
// The earlier owner in the hand-over test answers slowly: a Mailjet of its own.
const slow = fileSimulator({ seed: 42 })

const SHUTDOWN_MS = 2_000
const unique = (what: string) => `sd-${what}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`

/** Sends SIGTERM once `ready` holds, and says how the worker ended and how long it took. */
const stopWhen = async (worker: Worker, what: string, ready: () => boolean, timeoutMs = 60_000) => {
  await waitFor(what, () => (ready() ? true : undefined), timeoutMs).catch((e: unknown) => {
    throw new Error(`${String(e)}; its log ends:\n${worker.stderr().split("\n").slice(-15).join("\n")}`)
  })
  const started = Date.now()
  worker.proc.kill("SIGTERM")
  const code = await Promise.race([worker.exited, new Promise((r) => setTimeout(() => r("still running 30 s after SIGTERM"), 30_000))])
  return { code, ms: Date.now() - started }
}

const consumedAny = (w: Worker) => /consuming \S+ as group \S+: partitions \d/.test(w.stderr())

const orders = (id: string, contacts: number, events: number) =>
  Array.from({ length: events }, (_, n) =>
    Array.from({ length: contacts }, (_, i) => {
      const email = `${id}-${i}@example.com`
      return {
        key: email,
        value: JSON.stringify({ type: "track", event: "Order Completed", traits: { email }, properties: { revenue: n + 1, currency: "EUR" } })
      }
    })).flat()

describe("SIGTERM in every phase of serve: exit 0 within MAILJET_SHUTDOWN_TIMEOUT + 1 s", () => {
  it("while preflight retries an unreachable Mailjet", async () => {
    const id = unique("preflight")
    await createTopic(`delivery-${id}`, 1)
    const worker = startWorker(await workerEnv({ url: `http://127.0.0.1:${await freePort()}` }, id, { MAILJET_SHUTDOWN_TIMEOUT: `${SHUTDOWN_MS} millis` }))
    try {
      // Past the first try: the worker is between retries, which back off up to 30 s.
      const end = await stopWhen(worker, "preflight retrying", () => worker.stderr().split("preflight:").length > 2)
      expect(end.code).toBe(0)
      expect(end.ms).toBeLessThan(SHUTDOWN_MS + 1_000)
      expect(worker.stderr()).toContain("shut down before consuming")
      expect(consumedAny(worker)).toBe(false)
    } finally {
      if (worker.proc.exitCode === null) worker.proc.kill("SIGKILL")
    }
  }, 90_000)

  it("while waiting for an unreachable broker", async () => {
    const id = unique("broker")
    const worker = startWorker(await workerEnv(sim(), id, {
      KAFKA_BROKERS: `127.0.0.1:${await freePort()}`,
      KAFKA_OUTAGE_TIMEOUT: "5 minutes",
      MAILJET_SHUTDOWN_TIMEOUT: `${SHUTDOWN_MS} millis`
    }))
    try {
      const end = await stopWhen(worker, "waiting for the broker", () => worker.stderr().includes("Not ready; trying again"))
      expect(end.code).toBe(0)
      expect(end.ms).toBeLessThan(SHUTDOWN_MS + 1_000)
      expect(worker.stderr()).toContain("shut down before consuming")
    } finally {
      if (worker.proc.exitCode === null) worker.proc.kill("SIGKILL")
    }
  }, 90_000)

  it("while a new owner waits for its hand-over: it reads nothing", async () => {
    const id = unique("handover")
    const topic = `delivery-${id}`
    await createTopic(topic, 2)
    await produce(topic, orders(id, 200, 3))
    // The earlier owner is busy with slow calls when the group changes: its drain takes a while.
    const first = startWorker(await workerEnv(slow.sim(), id, { MAILJET_MAX_RPS: "20", MAILJET_SHUTDOWN_TIMEOUT: "5 seconds" }))
    let second: Worker | undefined
    try {
      await waitFor("the first worker consuming", () => (consumedAny(first) ? true : undefined), 60_000)
      await slow.run(slow.sim().setFaults({ latencyMs: 3_000 }))
      second = startWorker(await workerEnv(sim(), id, { MAILJET_SHUTDOWN_TIMEOUT: "5 seconds" }))
      const w = second
      const end = await stopWhen(w, "the second worker waiting for its hand-over", () => w.stderr().includes("hand-over: until"))
      expect(end.code).toBe(0)
      expect(end.ms).toBeLessThan(5_000 + 1_000)
      expect(consumedAny(w)).toBe(false)
      expect(w.stderr()).toMatch(/shut down: offsets committed, group left/)
    } finally {
      await slow.run(slow.sim().setFaults({}))
      for (const w of [first, second]) if (w !== undefined && w.proc.exitCode === null) w.proc.kill("SIGTERM")
      await Promise.all([first.exited, second?.exited])
    }
  }, 120_000)

  it("while a bulk job is watched: nothing of the job is committed", async () => {
    const id = unique("bulk")
    const topic = `delivery-${id}`
    await createTopic(topic, 1)
    await produce(topic, orders(id, 50, 1))
    // The job runs for a minute: the worker is polling it when the signal comes.
    await run(sim().setFaults({ jobDurationMs: 60_000 }))
    const worker = startWorker(await workerEnv(sim(), id, {
      MAILJET_BULK: "always",
      MAILJET_BULK_SIZE: "10",
      MAILJET_SHUTDOWN_TIMEOUT: `${SHUTDOWN_MS} millis`
    }))
    const posted = async () =>
      (await run(sim().requests)).some((r) => r.method === "POST" && r.path.endsWith("/managemanycontacts") && r.status === 201)
    try {
      let jobSeen = false
      const poll = setInterval(() => void posted().then((p) => (jobSeen ||= p)), 100)
      const end = await stopWhen(worker, "a bulk job posted", () => jobSeen).finally(() => clearInterval(poll))
      expect(end.code).toBe(0)
      expect(end.ms).toBeLessThan(SHUTDOWN_MS + 1_000)
      // The job's events are not done: their offsets are not committed.
      expect(await committedOffsets(`signal-mailjet-${id}`, topic, 1)).toEqual([-1])
    } finally {
      if (worker.proc.exitCode === null) worker.proc.kill("SIGKILL")
      await run(sim().setFaults({}))
    }
  }, 90_000)
})
