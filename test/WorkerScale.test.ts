/**
 * `serve` scaled out: several workers in one consumer group on the real broker, with planned
 * rebalances (a worker stopped with SIGTERM, one added) while the topic is being worked through,
 * then a crash (SIGKILL).
 */
import { Effect, Option } from "effect"
import { describe, expect, it } from "vitest"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import {
  committedOffsets,
  createTopic,
  endOffsets,
  produce,
  startWorker,
  waitFor,
  type Worker
} from "./support/kafka.js"

const { sim, run } = fileSimulator({ seed: 12 })
// The earlier owner in the slow-drain test answers slowly: a Mailjet of its own.
const slow = fileSimulator({ seed: 14 })

const PARTITIONS = 6
const CONTACTS = 150
const EVENTS = 8
const RPS = 200

const env = (id: string) =>
  workerEnv(sim(), id, {
    MAILJET_MAX_RPS: String(RPS),
    // The law is read from each event's own managecontact call: one call per event.
    MAILJET_BULK: "off",
    MAILJET_SHUTDOWN_TIMEOUT: "2 seconds",
    // The broker's shortest session: the killed worker's partitions move 4 s sooner than by default.
    KAFKA_SESSION_TIMEOUT: "6 seconds"
  })

const revenueOf = (body: unknown) =>
  ((body as { Properties?: { last_order_value?: number } } | undefined)?.Properties?.last_order_value)

/** Each contact's `Order Completed` events 1…count (revenue n), round by round: what each contact's order is checked against. */
const orders = (emails: ReadonlyArray<string>, count: number) =>
  Array.from({ length: count }, (_, i) => i + 1).flatMap((n) =>
    emails.map((email) => ({
      key: email,
      value: JSON.stringify({ type: "track", event: "Order Completed", traits: { email }, properties: { revenue: n, currency: "EUR" } })
    }))
  )

/** Each contact's revenues in the order Mailjet received its requests: what order and duplicates are read from. */
const revenuesByContact = (requests: ReadonlyArray<{ readonly body: unknown }>) => {
  const byContact = new Map<string, Array<number | undefined>>()
  for (const r of requests) {
    const email = (r.body as { Email: string }).Email
    byContact.set(email, [...(byContact.get(email) ?? []), revenueOf(r.body)])
  }
  return byContact
}

describe("serve scaled out on a real broker", () => {
  // A rebalance is a race: several runs, each a new topic and group.
  it.each([1, 2, 3])(
    "run %i: 3 workers, one stopped with SIGTERM and one added mid-stream, then one killed: in order, no duplicate before the kill, every contact on its last event",
    async (runNo) => {
      const id = `scale${Date.now().toString(36)}r${runNo}`
      const topic = `delivery-${id}`
      await createTopic(topic, PARTITIONS)
      const emails = Array.from({ length: CONTACTS }, (_, i) => `c${i}.${id}@example.com`)
      const records = []
      for (let n = 1; n <= EVENTS; n++) {
        for (const email of emails) {
          records.push({
            key: email,
            value: JSON.stringify({
              type: "track",
              event: "Order Completed",
              messageId: `${email}-${n}`,
              traits: { email },
              properties: { revenue: n, currency: "EUR" }
            })
          })
        }
      }
      await produce(topic, records)
      // Mailjet's limit per API key is the group's whole budget.
      await run(sim().setFaults({ latencyMs: 10, maxRps: RPS }))
      const mine = new Set(emails)
      const sent = async () => (await run(sim().requests)).filter((r) => mine.has((r.body as { Email?: string } | undefined)?.Email ?? ""))

      const workers: Array<Worker> = []
      let beforeKill = 0
      const ports: Array<string> = []
      const start = async () => {
        const e = await env(id)
        ports.push(e.PORT)
        workers.push(startWorker(e))
      }
      /** Each worker's gauges, summed by partition, as the group's /metrics would be. */
      const scrape = async (which: ReadonlyArray<number>) => {
        const lag = new Array<number>(PARTITIONS).fill(0)
        let share = 0
        for (const i of which) {
          const text = await (await fetch(`http://127.0.0.1:${ports[i]}/metrics`)).text()
          for (const m of text.matchAll(/signal_mailjet_consumer_lag\{topic="([^"]+)",partition="(\d+)"\} (\d+)/g)) {
            expect(m[1]).toBe(topic)
            lag[Number(m[2])]! += Number(m[3])
          }
          share += Number(/^signal_mailjet_rate_share (\S+)$/m.exec(text)?.[1] ?? "0")
        }
        return { lag, share }
      }
      for (let i = 0; i < 3; i++) await start()
      try {
        // The first worker, alone at first, reads at once; the others after their hand-over.
        const consuming = (w: Worker) => /: partitions \d/.test(w.stderr().split("\n").filter((l) => l.includes(`consuming ${topic} as group`)).at(-1) ?? "")
        await waitFor("a quarter sent, all three consuming", async () =>
          (await sent()).length >= (CONTACTS * EVENTS) / 4 && workers.every(consuming) ? true : undefined, 60_000)
        // Mid-stream: the offsets only move forward, so a lag reported a moment ago is at least
        // the broker's lag now, and never more than the partition holds.
        const ends = await endOffsets(topic)
        const mid = await scrape([0, 1, 2])
        const committedNow = await committedOffsets(`signal-mailjet-${id}`, topic, PARTITIONS)
        expect(mid.share).toBeCloseTo(1, 5)
        for (let p = 0; p < PARTITIONS; p++) {
          expect(mid.lag[p]!).toBeGreaterThanOrEqual(ends[p]! - Math.max(committedNow[p]!, 0))
          expect(mid.lag[p]!).toBeLessThanOrEqual(ends[p]!)
        }
        expect(mid.lag.reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
        workers[1]!.proc.kill("SIGTERM")
        await start()
        expect(await workers[1]!.exited).toBe(0)
        // Planned rebalances done (the new worker is consuming), then a crash while events remain.
        await waitFor("the added worker consuming", async () =>
          /consuming \S+ as group \S+: partitions \d/.test(workers[3]!.stderr()) && (await sent()).length >= (CONTACTS * EVENTS) * 0.6
            ? true
            : undefined, 60_000)
        beforeKill = (await sent()).length
        workers[0]!.proc.kill("SIGKILL")
        await workers[0]!.exited
        await waitFor(
          "every contact on its last event",
          async () => ((await sent()).filter((r) => revenueOf(r.body) === EVENTS).length >= CONTACTS ? true : undefined),
          90_000
        )
        // Everything committed: the surviving workers report no lag, and their shares make the whole budget.
        await waitFor("all committed", async () => {
          const c = await committedOffsets(`signal-mailjet-${id}`, topic, PARTITIONS)
          return c.join() === (await endOffsets(topic)).join() ? true : undefined
        })
        // The killed worker's partitions may all be committed before the group drops it (its
        // session timeout): its share moves to the survivors only then.
        const end = await waitFor("lag 0 reported, the killed worker's share taken over", async () => {
          const m = await scrape([2, 3])
          return m.lag.every((l) => l === 0) && Math.abs(m.share - 1) < 1e-5 ? m : undefined
        })
        expect(end.share).toBeCloseTo(1, 5)
      } finally {
        for (const w of workers) if (w.proc.exitCode === null) w.proc.kill("SIGTERM")
        await Promise.all(workers.map((w) => w.exited))
        await run(sim().setFaults({}))
        if (process.env["SCALE_LOGS"]) {
          const fs = await import("node:fs")
          workers.forEach((w, i) => fs.writeFileSync(`${process.env["SCALE_LOGS"]}/w${runNo}-${i}.log`, w.stderr() + w.stdout()))
          fs.writeFileSync(`${process.env["SCALE_LOGS"]}/sim${runNo}.json`, JSON.stringify((await sent()).map((r) => [r.at, (r.body as { Email: string }).Email, revenueOf(r.body), r.status])))
        }
      }
      expect(workers[1]!.stderr()).toMatch(/shut down: offsets committed, group left/)
      // At least one surviving worker went through a rebalance.
      expect(workers.some((w) => /group rebalancing/.test(w.stderr()))).toBe(true)

      const all = await sent()
      const requests = all.filter((r) => r.status !== 429)
      const byContact = revenuesByContact(requests)
      // Up to the crash (planned rebalances only): each contact's events reached Mailjet once each,
      // in order: 1, 2, … with nothing repeated or out of place.
      expect(beforeKill).toBeLessThan(CONTACTS * EVENTS)
      const planned = new Map<string, Array<number | undefined>>()
      for (const r of requests.filter((r) => all.indexOf(r) < beforeKill)) {
        const email = (r.body as { Email: string }).Email
        planned.set(email, [...(planned.get(email) ?? []), revenueOf(r.body)])
      }
      const notOnce = [...planned].filter(([, xs]) => xs.some((x, i) => x !== i + 1))
      expect(notOnce.map(([e, xs]) => `${e}: ${xs.join(",")}`)).toEqual([])
      // After the crash, the killed worker's uncommitted events are sent again from its last commit:
      // each contact's sequence is runs of consecutive events, each run starting at or before where
      // the previous one ended, and the last one ending on the last event.
      const replayedInOrder = (xs: ReadonlyArray<number | undefined>) =>
        xs.every((x, i) => i === 0 ? x === 1 : x === xs[i - 1]! + 1 || x! <= xs[i - 1]!) && xs.at(-1) === EVENTS
      const wrong = emails.filter((e) => !replayedInOrder(byContact.get(e) ?? []))
      expect(wrong.map((e) => `${e}: ${byContact.get(e)?.join(",")}`)).toEqual([])
      // The group as a whole within the budget: the busiest one-second window, and 429s at most a handful.
      const times = all.map((r) => r.at).sort((a, b) => a - b)
      let busiest = 0
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i]! - times[j]! >= 1000) j++
        busiest = Math.max(busiest, i - j + 1)
      }
      expect(busiest).toBeLessThanOrEqual(RPS)
      expect(all.filter((r) => r.status === 429).length).toBeLessThanOrEqual(5)
      expect(requests.every((r) => r.status >= 200 && r.status < 300)).toBe(true)
      const finals = await run(Effect.forEach(emails, (e) => sim().contact(e)))
      expect(finals.filter((c) => Option.isNone(c) || c.value.properties["last_order_value"] !== EVENTS).length).toBe(0)
    },
    180_000
  )
  it("a worker that only gives partitions away resumes at once; the newcomer waits the hand-over; nothing sent twice or out of order", async () => {
    const id = `keep${Date.now().toString(36)}`
    const topic = `delivery-${id}`
    await createTopic(topic, PARTITIONS)
    const emails = Array.from({ length: 60 }, (_, i) => `k${i}.${id}@example.com`)
    await produce(topic, orders(emails, 5))
    const mine = new Set(emails)
    const sent = async () => (await run(sim().requests)).filter((r) => mine.has((r.body as { Email?: string } | undefined)?.Email ?? ""))
    const slow = { ...(await env(id)), MAILJET_MAX_RPS: "50" }
    const first = startWorker(slow)
    const workers = [first]
    try {
      await waitFor("the first worker consuming", async () => ((await sent()).length > 0 ? true : undefined), 60_000)
      const second = startWorker({ ...(await env(id)), MAILJET_MAX_RPS: "50" })
      workers.push(second)
      await waitFor("the newcomer consuming", () => (/consuming \S+ as group \S+: partitions \d/.test(second.stderr()) ? true : undefined), 60_000)
      await waitFor("every contact on its last event", async () =>
        (await sent()).filter((r) => revenueOf(r.body) === 5).length >= emails.length ? true : undefined, 60_000)
    } finally {
      for (const w of workers) if (w.proc.exitCode === null) w.proc.kill("SIGTERM")
      await Promise.all(workers.map((w) => w.exited))
    }
    // When the newcomer's join was the group's only change (generation + 1; a slow heartbeat can add
    // one), the first worker kept only partitions it had drained itself: no hand-over to wait for.
    const generations = [...first.stderr().matchAll(/consuming \S+ as group \S+: partitions [\d,]+ \(generation (\d+)\)/g)].map((m) => Number(m[1]))
    expect(generations.length).toBeGreaterThanOrEqual(2)
    if (generations[1] === generations[0]! + 1) {
      expect(first.stderr()).toMatch(/kept only partitions it owned, so it resumes without the hand-over/)
    }
    expect(workers[1]!.stderr()).not.toMatch(/resumes without the hand-over/)
    const byContact = revenuesByContact((await sent()).filter((r) => r.status !== 429))
    const wrong = emails.filter((e) => byContact.get(e)?.join(",") !== "1,2,3,4,5")
    expect(wrong.map((e) => `${e}: ${byContact.get(e)?.join(",")}`)).toEqual([])
  }, 120_000)

  it("a drain that outlives the newcomer's deadline delays its first read (the fence), and nothing is sent twice or out of order", async () => {
    const id = `slow${Date.now().toString(36)}`
    const topic = `delivery-${id}`
    await createTopic(topic, 2)
    const emails = Array.from({ length: 30 }, (_, i) => `s${i}.${id}@example.com`)
    await produce(topic, orders(emails, 3))
    const mine = new Set(emails)
    /** What both Mailjets received for these contacts, in the order they received it. */
    const sent = async () =>
      [...(await slow.run(slow.sim().requests)), ...(await run(sim().requests))]
        .filter((r) => mine.has((r.body as { Email?: string } | undefined)?.Email ?? ""))
        .sort((a, b) => a.at - b.at)
    const first = startWorker({ ...(await env(id)), MAILJET_BASE_URL: slow.sim().url, MAILJET_MAX_RPS: "10", MAILJET_CONCURRENCY: "40", MAILJET_SHUTDOWN_TIMEOUT: "10 seconds" })
    const workers = [first]
    try {
      await waitFor("the first worker sending", async () => ((await sent()).length >= 5 ? true : undefined), 60_000)
      // From now on each of its calls takes 3 s, and it starts one every 100 ms: whenever the group
      // changes, its drain lasts about 3 s, within its own MAILJET_SHUTDOWN_TIMEOUT (10 s) but past
      // the newcomer's deadline (its own MAILJET_SHUTDOWN_TIMEOUT, 500 ms, + 1 s), as in a rolling
      // deploy that shortens the timeout.
      await slow.run(slow.sim().setFaults({ latencyMs: 3_000 }))
      const second = startWorker({ ...(await env(id)), MAILJET_MAX_RPS: "10", MAILJET_SHUTDOWN_TIMEOUT: "500 millis" })
      workers.push(second)
      await waitFor("the newcomer consuming", () => (/consuming \S+ as group \S+: partitions \d/.test(second.stderr()) ? true : undefined), 60_000)
      await slow.run(slow.sim().setFaults({}))
      await waitFor("every contact on its last event", async () =>
        (await sent()).filter((r) => revenueOf(r.body) === 3).length >= emails.length ? true : undefined, 60_000)
    } finally {
      await slow.run(slow.sim().setFaults({}))
      for (const w of workers) if (w.proc.exitCode === null) w.proc.kill("SIGTERM")
      await Promise.all(workers.map((w) => w.exited))
    }
    const [before, after] = [workers[0]!.stderr(), workers[1]!.stderr()]
    // The newcomer waited past its deadline for the first worker's release…
    expect(after).toMatch(/hand-over: until \S+ at most, waiting for the earlier owners of partitions \d to release them/)
    expect(after).not.toMatch(/reading anyway/)
    // …which came after the first worker's drain and last commit, and before the newcomer's first read.
    const at = (log: string, re: RegExp) => Date.parse(/timestamp=(\S+)/.exec(log.split("\n").find((l) => re.test(l)) ?? "")?.[1] ?? "")
    const drained = at(before, /group rebalancing: in-flight events finished and committed/)
    const read = at(after, /consuming \S+ as group \S+: partitions \d/)
    expect(drained).toBeLessThanOrEqual(read)
    const byContact = revenuesByContact((await sent()).filter((r) => r.status !== 429))
    const wrong = emails.filter((e) => byContact.get(e)?.join(",") !== "1,2,3")
    expect(wrong.map((e) => `${e}: ${byContact.get(e)?.join(",")}`)).toEqual([])
  }, 120_000)
})
