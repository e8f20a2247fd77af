/**
 * A backlog on every partition (issue 16, case 6): `serve` takes the partitions in turn instead of
 * working through partition 0's backlog first, and holds at most about two fetch answers in memory
 * (1 MiB a partition each), not the whole backlog.
 */
import { describe, expect, it } from "vitest"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import { createTopic, freePort, produce, readTopic, startWorker, waitFor } from "./support/kafka.js"

const { sim, run } = fileSimulator({ seed: 6 })

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
    const worker = startWorker(await workerEnv(sim(), id, {
      MAILJET_MAX_RPS: "5000",
      MAILJET_RETRY_BASE: undefined,
      MAILJET_CONCURRENCY: String(CONCURRENCY),
      KAFKA_COMMIT_INTERVAL: "500 millis",
      PORT: port
    }))
    const ours = async () =>
      (await run(sim().requests)).filter((r) =>
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
