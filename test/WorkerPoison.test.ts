/**
 * Poison records on the real broker (issue 16, case 1): `serve` as a process, the simulator over
 * real HTTP. Each poison record ends on the dead-letter topic within Kafka's 1 MB, kept by
 * reference (topic/partition/offset) when too large; the partition moves on; every good record is
 * delivered once; a restart sends nothing again. And a dead-letter topic that refuses the record.
 */
import { describe, expect, it } from "vitest"
import { readDeadLetter } from "../src/Run/Ndjson.js"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import {
  committedOffsets,
  createTopic,
  endOffsets,
  produceBytes,
  readTopic,
  setTopicConfig,
  startWorker,
  waitFor,
  type Worker
} from "./support/kafka.js"

const { sim, run } = fileSimulator({ seed: 16 })

let seq = 0
/** One partition: the poison sits between the good records of the same partition. */
const integration = async () => {
  const id = `p${Date.now().toString(36)}${seq++}`
  await createTopic(`delivery-${id}`, 1)
  return { id, topic: `delivery-${id}`, group: `signal-mailjet-${id}`, dlq: `delivery-${id}-dlq` }
}

const env = (id: string, extra: Record<string, string> = {}) => workerEnv(sim(), id, extra)

const good = (prefix: string, from: number, n: number) =>
  Array.from({ length: n }, (_, i) => {
    const email = `${prefix}${from + i}@example.com`
    return {
      key: email,
      value: Buffer.from(JSON.stringify({ type: "track", event: "Subscribed", messageId: `m-${email}`, traits: { email } }))
    }
  })

const POISON_EMAIL = "poison.victim@example.com"
/** Issue 16's poison: each would have crashed the worker, or made a dead letter Kafka refuses. */
const poison = [
  { name: "an object nested 10,000 deep", value: Buffer.from(`${`{"traits":`.repeat(10_000)}"${POISON_EMAIL}"${"}".repeat(10_000)}`) },
  { name: "a 600 KB JSON array", value: Buffer.from(`["${POISON_EMAIL}",${"1,".repeat(300_000)}1]`) },
  { name: "200 KB of \\x01", value: Buffer.alloc(200_000, 1) },
  { name: "bytes that are not UTF-8", value: Buffer.concat([Buffer.from([0xff, 0xfe, 0x80, 0xc3]), Buffer.from(` ${POISON_EMAIL} `), Buffer.from([0xed, 0xa0, 0x80])]) },
  {
    name: "an event of 900 KB, over the dead-letter bound",
    value: Buffer.from(JSON.stringify({ type: "track", event: "Subscribed", traits: POISON_EMAIL, note: "x".repeat(900_000) }))
  }
]

const managecontact = async (emails: ReadonlySet<string>) =>
  (await run(sim().requests)).filter((r) =>
    r.path.endsWith("/managecontact") && emails.has((r.body as { Email?: string } | undefined)?.Email ?? "")
  )

const stop = async (w: Worker) => {
  w.proc.kill("SIGTERM")
  return w.exited
}

const allCommitted = (t: { topic: string; group: string }) =>
  waitFor("the partition committed to its end", async () => {
    const [committed, end] = [await committedOffsets(t.group, t.topic, 1), await endOffsets(t.topic)]
    return committed[0] === end[0] ? committed : undefined
  }, 90_000)

describe("serve over poison records on a real broker", () => {
  it("50 good, the poison, 50 good: the poison on the DLQ under 1 MB, the partition at its end, each good one sent once, a restart sends nothing", async () => {
    const t = await integration()
    const before = good("before", 0, 50)
    const after = good("after", 0, 50)
    await produceBytes(t.topic, [...before, ...poison.map((p) => ({ key: "poison", value: p.value })), ...after])
    const emails = new Set([...before, ...after].map((r) => r.key))

    const worker = startWorker(await env(t.id))
    await allCommitted(t)
    const dead = await readTopic(t.dlq, poison.length, 20_000)
    expect(dead.length).toBe(poison.length)
    const first = 50 // the offset of the first poison record
    for (const [i, p] of poison.entries()) {
      const letter = dead.find((d) => d.headers.get("signal-mailjet-source") === `${t.topic}/0/${first + i}`)
      expect(letter, p.name).toBeDefined()
      expect(Buffer.byteLength(letter!.value), p.name).toBeLessThan(1_000_000)
      const record = JSON.parse(letter!.value) as Record<string, unknown>
      expect(record["error"], p.name).toBe("MalformedEvent")
      expect(String(record["reason"]), p.name).not.toContain(POISON_EMAIL)
      if ("omitted" in record) {
        // too large to hold: kept by reference, where it is in the topic
        expect(record["source"], p.name).toBe(`${t.topic}/0/${first + i}`)
        expect(record["bytes"], p.name).toBe(p.value.length)
        expect(p.value.length, p.name).toBeGreaterThan(100_000)
      } else {
        expect(readDeadLetter(letter!.value).text, p.name).toBe(p.value.toString("utf8"))
      }
    }
    // the two the issue names as too large are by reference; the deep one is kept whole
    expect(dead.filter((d) => "omitted" in JSON.parse(d.value)).length).toBeGreaterThanOrEqual(3)

    const sent = await managecontact(emails)
    expect(sent.length).toBe(100)
    expect(new Set(sent.map((r) => (r.body as { Email: string }).Email)).size).toBe(100)
    expect(await stop(worker)).toBe(0)
    const logs = worker.stdout() + worker.stderr()
    expect(logs).not.toMatch(/RangeError|Maximum call stack|internal error/)
    expect(logs).not.toContain(POISON_EMAIL)

    // A restart finds the partition done: nothing is sent or dead-lettered again.
    const again = startWorker(await env(t.id))
    await waitFor("consuming again", () => (again.stderr().includes("consuming ") ? true : undefined))
    await new Promise((r) => setTimeout(r, 1500))
    expect(await stop(again)).toBe(0)
    expect((await managecontact(emails)).length).toBe(100)
    expect((await readTopic(t.dlq, poison.length + 1, 3_000)).length).toBe(poison.length)
  }, 180_000)

  it("a dead-letter topic that refuses the record: kept by reference instead; refused even so, exit 2 and nothing committed past it", async () => {
    const t = await integration()
    // An operator's DLQ that takes 4 KB records at most: the poison's dead letter (10 KB) is refused.
    await createTopic(t.dlq, 1)
    await setTopicConfig(t.dlq, "max.message.bytes", "4000")
    const big = Buffer.from(`{"not":"an event","pad":"${"y".repeat(10_000)}"}`)
    await produceBytes(t.topic, [...good("refa", 0, 5), { key: "big", value: big }, ...good("refb", 0, 5)])
    const worker = startWorker(await env(t.id))
    await allCommitted(t)
    const [letter] = await readTopic(t.dlq, 1, 10_000)
    const record = JSON.parse(letter!.value) as Record<string, unknown>
    expect(record).toMatchObject({ error: "MalformedEvent", source: `${t.topic}/0/5`, bytes: big.length })
    expect(String(record["omitted"])).toMatch(/refused the record with it \(MESSAGE_TOO_LARGE\)/)
    expect(await stop(worker)).toBe(0)
    expect(worker.stderr()).toMatch(/refused by .*written with its original by reference/)

    // Now it refuses even that: the worker stops, exit 2, and the partition stays before the record.
    const u = await integration()
    await createTopic(u.dlq, 1)
    await setTopicConfig(u.dlq, "max.message.bytes", "100")
    await produceBytes(u.topic, [...good("refc", 0, 5), { key: "big", value: big }, ...good("refd", 0, 5)])
    const stuck = startWorker(await env(u.id))
    expect(await stuck.exited).toBe(2)
    expect(stuck.stderr()).toMatch(/refused the dead letter of .*\/0\/5, even with its original kept by reference/)
    expect(stuck.stderr()).toMatch(/max\.message\.bytes/)
    const [committed] = await committedOffsets(u.group, u.topic, 1)
    expect(committed).toBeLessThanOrEqual(5)
  }, 120_000)
})
