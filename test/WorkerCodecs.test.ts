/**
 * Batches as the broker holds them (issue 29, case 4), on the real broker with `serve` as a process:
 * - zstd, which Node 20 cannot decompress: a topic with compression.type=zstd, so the broker
 *   recompresses whatever it is sent;
 * - a batch this client cannot decode: snappy framed the way Java's producer writes it (xerial: a
 *   magic header, then length-prefixed raw blocks). The broker decodes that framing and stores the
 *   batch as it came; the client reads raw snappy blocks only. It is written here by this test's
 *   own producer, whose snappy encoder is swapped for a xerial framer for that one send.
 * Each is delivered, or dead-lettered by reference while its partition moves on; on the
 * suppressions topic, the worker reads them and becomes ready.
 */
import { Admin, compressionsAlgorithms, Producer, stringSerializers } from "@platformatic/kafka"
import { describe, expect, it } from "vitest"
import { runBin } from "./support/bin.js"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import { brokers, committedOffsets, endOffsets, freePort, readTopic, setTopicConfig, startWorker, waitFor, type Worker } from "./support/kafka.js"

const { sim, run } = fileSimulator({ seed: 29 })

let seq = 0
const integration = async (configs: Array<{ name: string; value: string }> = []) => {
  await run(sim().reset)
  const id = `z${Date.now().toString(36)}${seq++}`
  const t = { id, topic: `delivery-${id}`, group: `signal-mailjet-${id}`, dlq: `delivery-${id}-dlq`, suppressions: `delivery-${id}-suppressions` }
  await createTopic(t.topic, configs)
  return t
}

const createTopic = async (topic: string, configs: Array<{ name: string; value: string }>) => {
  const admin = new Admin({ clientId: "test-admin", bootstrapBrokers: brokers() })
  try {
    await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1, configs })
  } finally {
    await admin.close()
  }
}

const ZSTD = [{ name: "compression.type", value: "zstd" }]

type Snappy = { compressSync: (data: Buffer | { readonly buffer: Buffer }) => Buffer }
const snappy = compressionsAlgorithms.snappy as unknown as Snappy

/** Java's snappy framing around the client's own raw snappy block. */
const xerial = (raw: Buffer) => {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(raw.length)
  return Buffer.concat([Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]), length, raw])
}

/** One produce per call: `java-snappy` makes it one batch the worker cannot decode. */
const send = async (topic: string, records: ReadonlyArray<{ key: string; value: string }>, codec?: "java-snappy") => {
  const producer = new Producer({ clientId: "test-producer", bootstrapBrokers: brokers(), serializers: stringSerializers, autocreateTopics: true })
  const own = snappy.compressSync
  if (codec === "java-snappy") snappy.compressSync = (data) => xerial(own(data))
  try {
    await producer.send({
      messages: records.map((r) => ({ topic, key: r.key, value: r.value })),
      ...(codec === undefined ? {} : { compression: "snappy" as const })
    })
  } finally {
    snappy.compressSync = own
    await producer.close()
  }
}

const events = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) => {
    const email = `${prefix}${i}@example.com`
    return { key: email, value: JSON.stringify({ type: "track", event: "Subscribed", messageId: `m-${email}`, traits: { email } }) }
  })

const managecontact = async (emails: ReadonlySet<string>) =>
  (await run(sim().requests)).filter((r) =>
    r.path.endsWith("/managecontact") && emails.has((r.body as { Email?: string } | undefined)?.Email ?? "")
  )

const allCommitted = (t: { topic: string; group: string }) =>
  waitFor("the partition committed to its end", async () => {
    const [committed, end] = [await committedOffsets(t.group, t.topic, 1), await endOffsets(t.topic)]
    return committed[0] === end[0] ? committed[0] : undefined
  }, 90_000)

const stop = async (w: Worker) => {
  w.proc.kill("SIGTERM")
  return w.exited
}

const metric = async (port: string, name: string) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, "m"))
  return m === null ? undefined : Number(m[1])
}

describe("serve over compressed batches on a real broker", () => {
  it("a zstd input batch is delivered and committed", async () => {
    const t = await integration(ZSTD)
    const batch = events("zstd", 20)
    await send(t.topic, batch)
    const worker = startWorker(await workerEnv(sim(), t.id))
    try {
      expect(await allCommitted(t)).toBe(20)
      const sent = await managecontact(new Set(batch.map((r) => r.key)))
      expect(new Set(sent.map((r) => (r.body as { Email: string }).Email)).size).toBe(20)
    } finally {
      expect(await stop(worker)).toBe(0)
    }
    expect(worker.stderr()).not.toMatch(/zstd is not supported|Kafka unreachable/)
  }, 120_000)

  it("an undecodable batch is dead-lettered by reference, and its partition moves on to what follows", async () => {
    const t = await integration()
    const before = events("before", 3)
    const lost = events("lost", 4)
    const after = events("after", 3)
    await send(t.topic, before)
    await send(t.topic, lost, "java-snappy") // offsets 3 to 6
    await send(t.topic, after)
    const worker = startWorker(await workerEnv(sim(), t.id))
    try {
      expect(await allCommitted(t)).toBe(10)
      const dead = await readTopic(t.dlq, 4, 20_000)
      expect(dead.map((d) => d.headers.get("signal-mailjet-source")).sort()).toEqual([3, 4, 5, 6].map((o) => `${t.topic}/0/${o}`))
      for (const d of dead) {
        const letter = JSON.parse(d.value) as Record<string, unknown>
        expect(letter).toMatchObject({ error: "UndecodableBatch", source: d.headers.get("signal-mailjet-source"), attempts: 0 })
        expect(String(letter["reason"])).toMatch(/^a snappy batch that could not be decoded .*Java's producer frames snappy/)
        expect(String(letter["omitted"])).toContain("its batch could not be decoded")
        expect(letter).not.toHaveProperty("text")
      }
      // What came before and after it on the same partition is delivered; what was in it is not.
      const sent = await managecontact(new Set([...before, ...after, ...lost].map((r) => r.key)))
      expect(sent.map((r) => (r.body as { Email: string }).Email).sort()).toEqual([...before, ...after].map((r) => r.key).sort())
    } finally {
      expect(await stop(worker)).toBe(0)
    }
    expect(worker.stderr()).not.toMatch(/Kafka unreachable|internal error/)
  }, 120_000)

  it("the suppressions topic in zstd, with an undecodable batch: read, the worker ready, the skip logged and counted", async () => {
    const t = await integration()
    await createTopic(t.suppressions, [{ name: "cleanup.policy", value: "compact" }, ...ZSTD])
    const stored = (email: string) => JSON.stringify({ email, reason: "unsub", event: "unsub", at: new Date().toISOString() })
    const held = ["held0@example.com", "held1@example.com", "held2@example.com"]
    await send(t.suppressions, held.map((email) => ({ key: email, value: stored(email) })))
    // With compression.type=zstd the broker would recompress this one too: as an operator would, the
    // topic takes batches as their producers compress them from here on.
    await setTopicConfig(t.suppressions, "compression.type", "producer")
    await send(t.suppressions, [{ key: "skipped@example.com", value: stored("skipped@example.com") }], "java-snappy")
    const port = String(await freePort())
    const worker = startWorker(await workerEnv(sim(), t.id, { PORT: port }))
    try {
      await waitFor("ready", async () => ((await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.status === 200 ? true : undefined), 60_000)
      expect(await metric(port, "signal_mailjet_suppressions")).toBe(held.length)
      expect(await metric(port, "signal_mailjet_suppressions_undecodable_total")).toBe(1)
      expect(worker.stderr()).toMatch(new RegExp(`suppressions: record 0/3 of ${t.suppressions} skipped: a snappy batch that could not be decoded`))
    } finally {
      expect(await stop(worker)).toBe(0)
    }
  }, 120_000)

  it("replay --topic: a dead letter in zstd is replayed, one in an undecodable batch ends dead-lettered with the reason", async () => {
    const t = await integration(ZSTD)
    const letter = (email: string) =>
      JSON.stringify({
        error: "MailjetUnavailable",
        reason: "503",
        attempts: 3,
        at: new Date().toISOString(),
        line: 1,
        event: { type: "track", event: "Subscribed", messageId: `m-${email}`, traits: { email } }
      })
    await send(t.topic, [{ key: "a", value: letter("zstd.replayed@example.com") }])
    await setTopicConfig(t.topic, "compression.type", "producer")
    await send(t.topic, [{ key: "b", value: letter("never.read@example.com") }], "java-snappy")
    const replay = await runBin(["replay", "--topic", t.topic], { ...(await workerEnv(sim(), t.id)), KAFKA_BROKERS: brokers().join(",") })
    const outcomes = replay.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(outcomes).toStrictEqual([
      expect.objectContaining({ line: 1, outcome: "delivered" }),
      expect.objectContaining({ line: 2, outcome: "dead-lettered", error: "UndecodableBatch", reason: expect.stringMatching(new RegExp(`^a snappy batch that could not be decoded .*it is ${t.topic}/0/1$`)) })
    ])
    const sent = await managecontact(new Set(["zstd.replayed@example.com", "never.read@example.com"]))
    expect(sent.map((r) => (r.body as { Email: string }).Email)).toStrictEqual(["zstd.replayed@example.com"])
  }, 60_000)

  it("SIGTERM while the suppressions topic cannot be read: exit 0 at once, not after KAFKA_OUTAGE_TIMEOUT", async () => {
    const t = await integration()
    // No broker answers: the worker waits, not ready, to read the suppressions topic.
    const worker = startWorker(await workerEnv(sim(), t.id, { KAFKA_BROKERS: `127.0.0.1:${await freePort()}`, KAFKA_OUTAGE_TIMEOUT: "5 minutes" }))
    try {
      await waitFor("waiting for the broker", () => (worker.stderr().includes("Not ready; trying again") ? true : undefined), 60_000)
      worker.proc.kill("SIGTERM")
      const code = await Promise.race([worker.exited, new Promise((r) => setTimeout(() => r("still running 10 s after SIGTERM"), 10_000))])
      expect(code).toBe(0)
      expect(worker.stderr()).toContain("shut down before consuming")
    } finally {
      if (worker.proc.exitCode === null) worker.proc.kill("SIGKILL")
    }
  }, 120_000)
})
