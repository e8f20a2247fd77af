/**
 * A broker that goes away for ~13 s (issue 16, case 5), on a broker of the test's own (the shared
 * one is never stopped): `serve` stays up, reports not ready meanwhile, is ready again after, and
 * sends no committed record again; each contact's events still reach Mailjet in their order.
 * Then a broker that stays away past KAFKA_OUTAGE_TIMEOUT: exit 2, with the fix in the message.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import {
  committedOffsets,
  createTopic,
  endOffsets,
  freePort,
  ownBroker,
  produce,
  readTopic,
  startWorker,
  waitFor
} from "./support/kafka.js"

const { sim, run } = fileSimulator({ seed: 5 })
let broker: Awaited<ReturnType<typeof ownBroker>>
// Registered after the simulator's hooks: started after it, removed before it is disposed.
beforeAll(async () => {
  broker = await ownBroker()
}, 300_000)
afterAll(async () => {
  await broker?.remove()
}, 120_000)

const PARTITIONS = 3
const CONTACTS = 30
const EVENTS = 20

const readyStatus = (port: string) => fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.status, () => 0)

describe("serve through a broker outage", () => {
  it("rides out ~13 s without the broker: not ready meanwhile, ready after, nothing committed sent again, each contact in order", async () => {
    const id = `o${Date.now().toString(36)}`
    const topic = `delivery-${id}`
    await createTopic(topic, PARTITIONS, broker.brokers)
    const emails = Array.from({ length: CONTACTS }, (_, c) => `outage${c}@example.com`)
    // Contact c's event k is named n{k}: its order, as Mailjet must see it.
    const records = Array.from({ length: CONTACTS * EVENTS }, (_, i) => {
      const email = emails[i % CONTACTS]!
      const k = Math.floor(i / CONTACTS)
      return { key: email, value: JSON.stringify({ type: "track", event: "Subscribed", messageId: `${email}-${k}`, traits: { email, first_name: `n${k}` } }) }
    })
    await produce(topic, records, broker.brokers)
    // Where each event is: a re-send of a committed one is found by its place.
    const placed = new Map((await readTopic(topic, records.length, 30_000, broker.brokers)).map((m) => {
      const e = JSON.parse(m.value) as { traits: { email: string; first_name: string } }
      return [`${e.traits.email}/${e.traits.first_name}`, { partition: m.partition, offset: Number(m.offset) }] as const
    }))
    expect(placed.size).toBe(records.length)

    await run(sim().setFaults({ latencyMs: 40 }))
    const port = String(await freePort())
    const worker = startWorker(await workerEnv(sim(), id, {
      KAFKA_BROKERS: broker.brokers.join(","),
      MAILJET_RETRY_BASE: undefined,
      MAILJET_CONCURRENCY: "2",
      KAFKA_OUTAGE_TIMEOUT: "2 minutes",
      PORT: port
    }))
    const ours = async () =>
      (await run(sim().requests)).filter((r) =>
        r.path.endsWith("/managecontact") && emails.includes((r.body as { Email?: string } | undefined)?.Email ?? "")
      )
    await waitFor("some events sent", async () => ((await ours()).length >= 60 ? true : undefined), 60_000)
    expect(await readyStatus(port)).toBe(200)

    // Committed before the outage: none of these may be sent again from here on.
    const committed = await committedOffsets(`signal-mailjet-${id}`, topic, PARTITIONS, broker.brokers)
    const sentBefore = (await ours()).length
    await broker.stop()
    const down = Date.now()
    let notReady = false
    try {
      while (Date.now() - down < 13_000) {
        if ((await readyStatus(port)) === 503) notReady = true
        await new Promise((r) => setTimeout(r, 250))
      }
    } finally {
      await broker.start()
    }
    expect(worker.proc.exitCode).toBeNull()
    expect(notReady).toBe(true)
    await run(sim().setFaults({}))

    await waitFor("the topic committed to its end", async () => {
      const [c, end] = [await committedOffsets(`signal-mailjet-${id}`, topic, PARTITIONS, broker.brokers), await endOffsets(topic, broker.brokers)]
      return JSON.stringify(c) === JSON.stringify(end) ? true : undefined
    }, 120_000)
    await waitFor("ready again", async () => ((await readyStatus(port)) === 200 ? true : undefined), 30_000)
    worker.proc.kill("SIGTERM")
    expect(await worker.exited).toBe(0)
    expect(worker.stderr()).toMatch(/Kafka unreachable .*not ready; trying again/)

    const requests = await ours()
    const resent = requests.slice(sentBefore).filter((r) => {
      const body = r.body as { Email: string; Properties?: { firstname?: string }; Name?: string }
      const at = placed.get(`${body.Email}/${body.Name ?? ""}`)!
      return at.offset < committed[at.partition]!
    })
    expect(resent).toEqual([])
    for (const email of emails) {
      const names = requests.filter((r) => (r.body as { Email: string }).Email === email).map((r) => (r.body as { Name: string }).Name)
      // In order, with at most a run sent again from where the last commit left off.
      const expected = Array.from({ length: EVENTS }, (_, k) => `n${k}`)
      const firsts = names.filter((n, i) => names.indexOf(n) === i)
      expect(firsts).toEqual(expected)
      expect(names.at(-1)).toBe(`n${EVENTS - 1}`)
    }
  }, 300_000)

  it("a broker away past KAFKA_OUTAGE_TIMEOUT: exit 2, naming the variable", async () => {
    const id = `q${Date.now().toString(36)}`
    await createTopic(`delivery-${id}`, 1, broker.brokers)
    const worker = startWorker(await workerEnv(sim(), id, {
      KAFKA_BROKERS: broker.brokers.join(","),
      MAILJET_MAX_RPS: undefined,
      MAILJET_RETRY_BASE: undefined,
      KAFKA_COMMIT_INTERVAL: undefined,
      KAFKA_OUTAGE_TIMEOUT: "8 seconds"
    }))
    await waitFor("consuming", () => (worker.stderr().includes("consuming ") ? true : undefined), 60_000)
    // Not started again: this file's last test, and afterAll removes the broker (a JVM start saved).
    await broker.stop()
    expect(await worker.exited).toBe(2)
    expect(worker.stderr()).toMatch(/unreachable for longer than KAFKA_OUTAGE_TIMEOUT \(8s\)/)
    expect(worker.stderr()).toMatch(/KAFKA_BROKERS/)
  }, 180_000)
})
