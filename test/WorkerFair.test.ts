/**
 * A backlog on every partition (issue 16, case 6): `serve` takes the partitions in turn instead of
 * working through partition 0's backlog first, and holds at most about two fetch answers in memory
 * (1 MiB a partition each), not the whole backlog.
 */
import { ManagedRuntime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Simulator from "../src/Simulator/Simulator.js"
import { createTopic, freePort, produce, readTopic, startWorker, waitFor } from "./support/kafka.js"
import { KEY, presetProperties, SECRET } from "./support/layers.js"

const runtime = ManagedRuntime.make(Simulator.layer({
  apiKey: KEY,
  secretKey: SECRET,
  lists: [{ id: 1, name: "Signal" }],
  properties: presetProperties,
  seed: 6
}))
let sim: Simulator.SimulatorService
beforeAll(async () => {
  sim = await runtime.runPromise(Simulator.Simulator)
})
afterAll(async () => {
  await runtime.dispose()
})

const PARTITIONS = 3
/** What one fetch may bring per partition (FETCH_PARTITION_BYTES in KafkaWorker.ts). */
const FETCH_PARTITION_BYTES = 1_048_588
const CONCURRENCY = 8

describe("serve over a backlog on every partition", () => {
  it("law: the first sends cover every partition in near-equal shares, and read-ahead stays within two fetch answers", async () => {
    const id = `f${Date.now().toString(36)}`
    const topic = `delivery-${id}`
    await createTopic(topic, PARTITIONS)
    // ~1 KB events, 9 MB in all: three times what two fetch answers of three partitions hold.
    const n = 9_000
    const pad = "p".repeat(900)
    const records = Array.from({ length: n }, (_, i) => {
      const email = `fair${i}@example.com`
      return { key: email, value: JSON.stringify({ type: "track", event: "Subscribed", messageId: `m${i}`, traits: { email, note: pad } }) }
    })
    const recordBytes = Buffer.byteLength(records[0]!.value)
    await produce(topic, records)
    const partitionOf = new Map((await readTopic(topic, n, 60_000)).map((m) => [m.key!, m.partition] as const))
    expect(partitionOf.size).toBe(n)

    const port = String(await freePort())
    const worker = startWorker({
      MAILJET_API_KEY: KEY,
      MAILJET_SECRET_KEY: SECRET,
      MAILJET_LIST_ID: "1",
      MAILJET_BASE_URL: sim.url,
      MAILJET_MAX_RPS: "5000",
      MAILJET_CONCURRENCY: String(CONCURRENCY),
      SIGNAL_INTEGRATION_ID: id,
      KAFKA_COMMIT_INTERVAL: "500 millis",
      MAILJET_SHUTDOWN_TIMEOUT: "1 second",
      PORT: port
    })
    const ours = async () =>
      (await runtime.runPromise(sim.requests)).filter((r) =>
        r.path.endsWith("/managecontact") && partitionOf.has((r.body as { Email?: string } | undefined)?.Email ?? "")
      )
    let maxReadAhead = 0
    const sampling = (async () => {
      while (worker.proc.exitCode === null && !worker.proc.killed) {
        const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => "")
        const m = /^signal_mailjet_read_ahead (\d+)/m.exec(text)
        if (m) maxReadAhead = Math.max(maxReadAhead, Number(m[1]))
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
    await waitFor("every event sent", async () => ((await ours()).length >= n ? true : undefined), 240_000)
    worker.proc.kill("SIGTERM")
    expect(await worker.exited).toBe(0)
    await sampling

    // Fair: among the first 600 sends, each partition has at least a fifth (a third is even).
    const first = (await ours()).slice(0, 600)
    const shares = Array.from({ length: PARTITIONS }, (_, p) =>
      first.filter((r) => partitionOf.get((r.body as { Email: string }).Email) === p).length / first.length)
    console.log(`first 600 sends by partition: ${shares.map((s) => s.toFixed(2)).join(" ")}; read-ahead at most ${maxReadAhead} of ${n}`)
    for (const share of shares) expect(share).toBeGreaterThan(0.2)

    // Bounded: never the whole backlog, at most two answers of 1 MiB a partition, the stream's
    // 64 and what is being delivered.
    const bound = Math.ceil((2 * PARTITIONS * FETCH_PARTITION_BYTES) / recordBytes) + 64 + 2 * CONCURRENCY
    expect(maxReadAhead).toBeGreaterThan(0)
    expect(maxReadAhead).toBeLessThanOrEqual(bound)
    expect(bound).toBeLessThan(n)
  }, 300_000)
})
