/**
 * `serve` from zero, on the real broker: a topic that does not exist and a broker that does not
 * answer each get their own error and fix; a record's log lines say where it is on Kafka.
 */
import { describe, expect, it } from "vitest"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import { Admin } from "@platformatic/kafka"
import { brokers, createTopic, freePort, produce, startWorker, waitFor } from "./support/kafka.js"

const { sim } = fileSimulator({ seed: 5 })

const unique = () => `i15-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`

// The worker's own MAILJET_MAX_RPS, and durations as an operator would write them.
const env = (id: string, extra: Record<string, string> = {}) =>
  workerEnv(sim(), id, {
    MAILJET_MAX_RPS: undefined,
    MAILJET_RETRY_BASE: "10ms",
    MAILJET_SHUTDOWN_TIMEOUT: "1s",
    KAFKA_COMMIT_INTERVAL: "200ms",
    ...extra
  })

describe("serve from zero", () => {
  it("no topic yet: exit 2, naming the topic and how to create it, not the SASL/TLS settings", async () => {
    const id = unique()
    const worker = startWorker(await env(id))
    expect(await worker.exited).toBe(2)
    expect(worker.stderr()).toContain(
      `signal-mailjet serve: stopped: Kafka has no topic delivery-${id}. Create it, with as many partitions as workers may share it (locally: scripts/kafka topic delivery-${id} 6;`
    )
    expect(worker.stderr()).not.toContain("SASL")
    // Nothing left behind by the mistyped id: its suppressions topic was not created.
    const admin = new Admin({ clientId: "test-admin", bootstrapBrokers: brokers() })
    try {
      expect((await admin.listTopics()).filter((t) => t.startsWith(`delivery-${id}`))).toEqual([])
    } finally {
      await admin.close()
    }
  }, 60_000)

  it("no broker answering: exit 2, its own error", async () => {
    // It waits for a broker that may be restarting, up to KAFKA_OUTAGE_TIMEOUT, then says why.
    const worker = startWorker(await env(unique(), { KAFKA_BROKERS: `127.0.0.1:${await freePort()}`, KAFKA_OUTAGE_TIMEOUT: "3s" }))
    expect(await worker.exited).toBe(2)
    expect(worker.stderr()).toContain("signal-mailjet serve: stopped: Kafka cannot be reached: no broker of KAFKA_BROKERS answered")
    expect(worker.stderr()).toContain("scripts/kafka start")
  }, 90_000)

  it("a record's log line says partition= and offset=, not line=", async () => {
    const id = unique()
    await createTopic(`delivery-${id}`, 1)
    await createTopic(`delivery-${id}-dlq`, 1)
    await produce(`delivery-${id}`, [
      { key: "a", value: JSON.stringify({ type: "track", event: "Subscribed", traits: { email: "a@example.com" } }) },
      { key: "b", value: "{not json" }
    ])
    const worker = startWorker(await env(id))
    try {
      const warning = await waitFor("the dead letter's warning", () =>
        worker.stderr().split("\n").find((l) => l.includes("error=MalformedEvent")))
      expect(warning).toContain("partition=0 offset=1")
      expect(warning).not.toContain("line=")
      expect(warning).toContain("level=WARN")
    } finally {
      worker.proc.kill("SIGTERM")
      await worker.exited
    }
  }, 60_000)
})
