/**
 * `signal-mailjet serve` as a real process against a real Kafka broker and the simulator over
 * real HTTP.
 */
import { describe, expect, it } from "vitest"
import { readDeadLetter } from "../src/Run/Ndjson.js"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import {
  committedOffsets,
  createTopic,
  endOffsets,
  freePort,
  produce,
  readTopic,
  startWorker,
  waitFor,
  type Worker
} from "./support/kafka.js"
import { presetProperties, SECRET } from "./support/layers.js"

const { sim, run } = fileSimulator({
  // signup_method is missing on purpose: events that set it go without it, and it is dead-lettered alone.
  properties: presetProperties.filter((p) => p.name !== "signup_method"),
  seed: 3
})

const PARTITIONS = 3
let seq = 0
/** Each test gets its own integration id, so its own topic, group and dead-letter topic. */
const integration = async () => {
  const id = `t${Date.now().toString(36)}${seq++}`
  await createTopic(`delivery-${id}`, PARTITIONS)
  return { id, topic: `delivery-${id}`, group: `signal-mailjet-${id}`, dlq: `delivery-${id}-dlq` }
}

const env = (id: string, extra: Record<string, string> = {}) =>
  workerEnv(sim(), id, {
    // signup_method is missing in this simulator: these tests send anyway, as a dead letter of its own.
    MAILJET_MISSING_PROPERTIES: "allow",
    // Also the bound of the rebalance hand-over (this + 1 s) for a claim whose owner left the group.
    MAILJET_SHUTDOWN_TIMEOUT: "2 seconds",
    ...extra
  })

const track = (event: string, email: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: "track", event, messageId: `${event}-${email}`, traits: { email }, ...extra })

const requestsFor = async (emails: ReadonlySet<string>) =>
  (await run(sim().requests)).filter((r) => emails.has((r.body as { Email?: string } | undefined)?.Email ?? ""))

/** What a group that finished the topic has committed: the end offset, or none for an empty partition. */
const committable = async (topic: string) => (await endOffsets(topic)).map((o) => (o === 0 ? -1 : o))

const stop = async (w: Worker) => {
  w.proc.kill("SIGTERM")
  return w.exited
}

describe("serve against a real Kafka broker", () => {
  it("delivers, drops, dead-letters to the DLQ topic, serves /health /ready /metrics, and commits everything on SIGTERM", async () => {
    const t = await integration()
    const emails = ["a1@example.com", "a2@example.com", "a3@example.com"]
    const records = [
      { key: emails[0]!, value: track("Subscribed", emails[0]!) },
      { key: emails[1]!, value: track("Order Completed", emails[1]!, { properties: { revenue: "12.50", currency: "EUR" } }) },
      { key: "page", value: JSON.stringify({ type: "page", name: "Home", context: { traits: { email: emails[0] } } }) },
      { key: "broken", value: "{not json" },
      { key: emails[2]!, value: track("Signed Up", emails[2]!, { properties: { method: "sso" } }) }
    ]
    await produce(t.topic, records)
    const e = await env(t.id)
    const worker = startWorker(e)
    const base = `http://127.0.0.1:${e.PORT}`
    await waitFor("ready", async () => {
      const res = await fetch(`${base}/ready`).catch(() => undefined)
      return res?.status === 200 ? true : undefined
    })
    expect(await (await fetch(`${base}/health`)).text()).toBe("ok")
    const dead = await readTopic(t.dlq, 2)
    expect(dead.map((d) => JSON.parse(d.value).error).sort()).toEqual(["MalformedEvent", "PropertyMissing"])
    // The sign-up went through without the property Mailjet lacks; that property alone is dead-lettered.
    const missing = dead.map((d) => JSON.parse(d.value)).find((d) => d.error === "PropertyMissing")
    expect(missing.event).toEqual(JSON.parse(records[4]!.value))
    expect(missing.only).toEqual(["signup_method"])
    expect(missing.reason).toMatch(/signup_method/)
    expect(dead.find((d) => JSON.parse(d.value).error === "MalformedEvent")?.headers.get("signal-mailjet-source")).toMatch(
      new RegExp(`^${t.topic}/\\d/\\d+$`)
    )
    await waitFor("three contacts", async () => ((await requestsFor(new Set(emails))).filter((r) => r.status === 201).length === 3 ? true : undefined))
    // Commits follow the outcomes by up to KAFKA_COMMIT_INTERVAL (and, with MAILJET_BULK=auto, by a window).
    const metrics = await waitFor("a commit", async () => {
      const text = await (await fetch(`${base}/metrics`)).text()
      return /signal_mailjet_last_commit_timestamp_seconds \d+/.test(text) ? text : undefined
    })
    expect(metrics).toMatch(/signal_mailjet_events_total\{outcome="delivered",event="Subscribed",reason="addforce"\} 1/)
    expect(metrics).toMatch(/signal_mailjet_events_total\{outcome="dropped",event="unmapped",reason="event not mapped by the preset"\} 1/)
    expect(metrics).toMatch(/signal_mailjet_events_total\{outcome="delivered",event="Signed Up",reason="addnoforce\+PropertyMissing"\} 1/)
    expect(metrics).toMatch(/# TYPE signal_mailjet_request_duration_ms histogram/)
    expect(metrics).toMatch(/signal_mailjet_in_flight_events 0/)
    expect(metrics).toMatch(/signal_mailjet_last_commit_timestamp_seconds \d+/)

    expect(await stop(worker)).toBe(0)
    expect(worker.stderr()).toMatch(/shut down: offsets committed, group left/)
    expect(await committedOffsets(t.group, t.topic, PARTITIONS)).toEqual(await committable(t.topic))
    expect(worker.stdout() + worker.stderr()).not.toContain(SECRET)
    expect(worker.stdout() + worker.stderr()).not.toContain("a1@example.com")

    // A restart finds nothing left to do: nothing is sent again.
    const before = (await requestsFor(new Set(emails))).length
    const again = startWorker(await env(t.id))
    await waitFor("ready again", async () => (again.stderr().includes("consuming") ? true : undefined))
    await new Promise((r) => setTimeout(r, 1000))
    expect(await stop(again)).toBe(0)
    expect((await requestsFor(new Set(emails))).length).toBe(before)
  })

  it("keeps one contact's events in order within a partition while contacts run in parallel", async () => {
    const t = await integration()
    await run(sim().setFaults({ latencyMs: 15 }))
    const emails = ["o1@example.com", "o2@example.com", "o3@example.com", "o4@example.com"]
    const records = Array.from({ length: 120 }, (_, i) => {
      const email = emails[i % 4]!
      return { key: email, value: track(i % 3 === 2 ? "Unsubscribed" : "Subscribed", email, { traits: { email, first_name: `n${i}` } }) }
    })
    await produce(t.topic, records)
    const worker = startWorker(await env(t.id, { MAILJET_CONCURRENCY: "16" }))
    await waitFor("all delivered", async () => ((await requestsFor(new Set(emails))).length >= 120 ? true : undefined), 60_000)
    expect(await stop(worker)).toBe(0)
    await run(sim().setFaults({}))
    const requests = await requestsFor(new Set(emails))
    for (const email of emails) {
      const seen = requests.filter((r) => (r.body as { Email: string }).Email === email).map((r) => (r.body as { Name: string }).Name)
      const sent = records.filter((r) => r.key === email).map((r) => (JSON.parse(r.value) as { traits: { first_name: string } }).traits.first_name)
      expect(seen).toEqual(sent)
    }
  })

  it("survives kill -9 mid-stream: after a restart every event is delivered, dropped or on the DLQ; none lost", async () => {
    const t = await integration()
    await run(sim().setFaults({ latencyMs: 10 }))
    const n = 400
    const records = Array.from({ length: n }, (_, i) => {
      const email = `crash${i}@example.com`
      return i % 50 === 7
        ? { key: email, value: `{"broken": ${i}` }
        : i % 50 === 13
        ? { key: email, value: JSON.stringify({ type: "page", name: "Home", traits: { email } }) }
        : { key: email, value: track("Subscribed", email) }
    })
    await produce(t.topic, records)
    // The broker's shortest session: the killed worker's partitions move 4 s sooner than by default.
    const e = await env(t.id, { MAILJET_CONCURRENCY: "4", KAFKA_SESSION_TIMEOUT: "6 seconds" })
    const first = startWorker(e)
    const crashEmails = new Set(records.map((r) => r.key))
    await waitFor("some progress", async () => ((await requestsFor(crashEmails)).length >= 60 ? true : undefined), 60_000)
    first.proc.kill("SIGKILL")
    await first.exited
    const beforeRestart = new Set((await requestsFor(crashEmails)).filter((r) => r.status === 201).map((r) => (r.body as { Email: string }).Email))
    expect(beforeRestart.size).toBeLessThan(n)

    const second = startWorker({ ...e, PORT: String(await freePort()) })
    const mapped = records.filter((r) => !r.value.startsWith("{\"broken") && !r.value.includes("\"page\""))
    expect(mapped.length).toBeGreaterThan(0)
    await waitFor("every mapped event delivered", async () => {
      const delivered = new Set((await requestsFor(crashEmails)).filter((r) => r.status === 201).map((r) => (r.body as { Email: string }).Email))
      return mapped.every((r) => delivered.has(r.key)) ? true : undefined
    }, 90_000)
    await waitFor("all committed", async () => {
      const [c, end] = [await committedOffsets(t.group, t.topic, PARTITIONS), await committable(t.topic)]
      return JSON.stringify(c) === JSON.stringify(end) ? true : undefined
    })
    // Committed, so every dead letter is stored (a record is committed only after its dead letter):
    // the DLQ is read to its end. Duplicates are allowed after a crash.
    const broken = records.filter((r) => r.value.startsWith("{\"broken")).map((r) => r.value)
    const dead = await readTopic(t.dlq, (await endOffsets(t.dlq)).reduce((a, b) => a + b, 0), 5_000)
    const brokenOnDlq = new Set(dead.map((d) => readDeadLetter(d.value).text))
    expect(broken.filter((b) => !brokenOnDlq.has(b))).toEqual([])
    expect(await stop(second)).toBe(0)
    await run(sim().setFaults({}))
  }, 180_000)

  it("a fatal error halts without committing and exits non-zero with the fix", async () => {
    const t = await integration()
    await produce(t.topic, Array.from({ length: 20 }, (_, i) => ({ key: `f${i}`, value: track("Subscribed", `fatal${i}@example.com`) })))
    const worker = startWorker(await env(t.id, { MAILJET_LIST_ID: "404" }))
    const code = await worker.exited
    expect(code).toBe(2)
    expect(worker.stderr()).toMatch(/ListNotFound|no contact list 404/)
    expect(worker.stderr()).toMatch(/MAILJET_LIST_ID/)
    expect(await committedOffsets(t.group, t.topic, PARTITIONS)).toEqual([-1, -1, -1])

    // Wrong keys: the message says to re-copy them, and the secret never shows.
    const unauthorized = startWorker(await env(t.id, { MAILJET_SECRET_KEY: "wrong-secret-1234" }))
    expect(await unauthorized.exited).toBe(2)
    expect(unauthorized.stderr()).toMatch(/Re-copy both keys/)
    expect(unauthorized.stderr()).not.toContain("wrong-secret-1234")
    expect(await committedOffsets(t.group, t.topic, PARTITIONS)).toEqual([-1, -1, -1])
  })

  it("an outage pauses (not ready), probes, and resumes without loss", async () => {
    const t = await integration()
    const e = await env(t.id, { MAILJET_OUTAGE_THRESHOLD: "5", MAILJET_MAX_ATTEMPTS: "3", MAILJET_CONCURRENCY: "2" })
    const worker = startWorker(e)
    const base = `http://127.0.0.1:${e.PORT}`
    await waitFor("ready", async () => ((await fetch(`${base}/ready`).catch(() => undefined))?.status === 200 ? true : undefined))
    await run(sim().setFaults({ outage: true }))
    const emails = Array.from({ length: 40 }, (_, i) => `out${i}@example.com`)
    await produce(t.topic, emails.map((email) => ({ key: email, value: track("Subscribed", email) })))
    await waitFor("paused", async () => ((await fetch(`${base}/ready`)).status === 503 ? true : undefined))
    await run(sim().setFaults({}))
    // Events that ran out of attempts before the pause are on the DLQ; every other one is delivered.
    await waitFor("resumed: every event delivered or dead-lettered", async () => {
      const delivered = new Set((await requestsFor(new Set(emails))).filter((r) => r.status === 201).map((r) => (r.body as { Email: string }).Email))
      const missing = emails.filter((m) => !delivered.has(m))
      if (missing.length > 5) return undefined
      const dead = new Set((await readTopic(t.dlq, missing.length, 3_000)).map((d) => JSON.parse(d.value).event.traits.email as string))
      return missing.every((m) => dead.has(m)) ? true : undefined
    }, 90_000)
    await waitFor("ready again", async () => ((await fetch(`${base}/ready`)).status === 200 ? true : undefined))
    expect(await stop(worker)).toBe(0)
    // Events that gave up before the pause are on the DLQ; nothing else went missing.
    expect(worker.stderr()).toMatch(/paused consuming/)
  }, 120_000)

  it("stops at once, exit 2, when its HTTP port is taken: it never consumes while another process answers /ready", async () => {
    const t = await integration()
    await produce(t.topic, [{ key: "p1@example.com", value: track("Subscribed", "p1@example.com") }])
    const net = await import("node:net")
    const taken = net.createServer()
    const port = await new Promise<number>((resolve) => taken.listen(0, "127.0.0.1", () => resolve((taken.address() as { port: number }).port)))
    try {
      const before = (await requestsFor(new Set(["p1@example.com"]))).length
      const worker = startWorker({ ...(await env(t.id)), PORT: String(port) })
      expect(await worker.exited).toBe(2)
      expect(worker.stderr()).toMatch(new RegExp(`cannot listen on port ${port} .*another process has it`))
      expect(worker.stderr()).not.toMatch(/consuming /)
      expect((await requestsFor(new Set(["p1@example.com"]))).length).toBe(before)
    } finally {
      taken.close()
    }
  })
})
