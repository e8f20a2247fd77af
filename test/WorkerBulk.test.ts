/**
 * `serve` with MAILJET_BULK=always on the real broker: killed with -9 while a bulk job is running,
 * then restarted; and joined by a second worker while jobs run. Offsets are committed only once the job carrying a record's contact has been read
 * to its end, so the restart re-sends what the kill left open: no event is lost, and every contact
 * ends as its events, in order, leave it.
 */
import { describe, expect, it } from "vitest"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import { committedOffsets, createTopic, endOffsets, freePort, produce, startWorker, waitFor } from "./support/kafka.js"

const { sim, run } = fileSimulator({ seed: 13 })

const PARTITIONS = 3
const CONTACTS = 300

/** Per contact, in order: sign-up (consent granted), an order, for every third an unsubscribe, then an identify without consent. */
const recordsOf = (id: string) =>
  Array.from({ length: CONTACTS }, (_, i) => {
    const email = `bulk-${id}-${i}@example.com`
    const at = (kind: string, extra: Record<string, unknown>) => ({
      key: email,
      value: JSON.stringify({ type: "track", event: kind, messageId: `${kind}-${i}`, ...extra })
    })
    return [
      at("Signed Up", { properties: { method: "form" }, context: { traits: { email, first_name: "First" }, consent: { marketing: true } } }),
      at("Order Completed", { properties: { revenue: i, currency: "EUR" }, context: { traits: { email } } }),
      ...(i % 3 === 0 ? [at("Unsubscribed", { context: { traits: { email } } })] : []),
      { key: email, value: JSON.stringify({ type: "identify", messageId: `id-${i}`, context: { traits: { email, first_name: "Last" } } }) }
    ]
  }).flat()

/** A topic with the records on it, jobs that take 1.5 s (each one polled once, after as long), and the worker's environment. */
const setUp = async (id: string, shutdownTimeout: string) => {
  const topic = `delivery-${id}`
  await createTopic(topic, PARTITIONS)
  await produce(topic, recordsOf(id))
  await run(sim().setFaults({ jobDurationMs: 1500 }))
  const env = await workerEnv(sim(), id, {
    MAILJET_MAX_RPS: "200",
    MAILJET_BULK: "always",
    MAILJET_BULK_SIZE: "100",
    MAILJET_SHUTDOWN_TIMEOUT: shutdownTimeout,
    // The broker's shortest session: a killed worker's partitions move 4 s sooner than by default.
    KAFKA_SESSION_TIMEOUT: "6 seconds"
  })
  const end = (await endOffsets(topic)).map((o) => (o === 0 ? -1 : o))
  const group = `signal-mailjet-${id}`
  return {
    env,
    end,
    committed: () => committedOffsets(group, topic, PARTITIONS),
    allCommitted: () =>
      waitFor("all committed", async () => {
        const c = await committedOffsets(group, topic, PARTITIONS)
        return JSON.stringify(c) === JSON.stringify(end) ? true : undefined
      }, 120_000)
  }
}

const jobsPosted = async () =>
  (await run(sim().requests)).filter((r) => r.method === "POST" && r.path.endsWith("/managemanycontacts") && r.status === 201).length

/**
 * Each contact as its events leave it, in order: the last name, the order, and an unsubscribe that
 * the later identify (no consent: addnoforce) does not undo. A job landing after a later update of
 * its contacts would leave the first name, or re-subscribe.
 */
const wrongContacts = async (id: string) => {
  const wrong: Array<string> = []
  for (let i = 0; i < CONTACTS; i++) {
    const c = await run(sim().contact(`bulk-${id}-${i}@example.com`))
    const got = c._tag === "Some"
      ? { list: c.value.lists.get(1), first_name: c.value.properties["first_name"], order: c.value.properties["last_order_value"] }
      : undefined
    const want = { list: i % 3 === 0 ? "unsubscribed" : "subscribed", first_name: "Last", order: i }
    if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${i}: ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`)
  }
  return wrong
}

describe("serve with bulk jobs against a real Kafka broker", () => {
  it("kill -9 while a job runs, restart: no event lost, every contact's final state right", async () => {
    const id = `b${Date.now().toString(36)}`
    const { allCommitted, committed, end, env } = await setUp(id, "2 seconds")
    const first = startWorker(env)
    await waitFor("a bulk job started", async () => ((await jobsPosted()) > 0 ? true : undefined), 60_000)
    first.proc.kill("SIGKILL")
    await first.exited
    // The job was still running: its records were not committed.
    expect(await committed()).not.toEqual(end)

    const second = startWorker({ ...env, PORT: String(await freePort()) })
    await allCommitted()
    second.proc.kill("SIGTERM")
    expect(await second.exited).toBe(0)
    expect(await jobsPosted()).toBeGreaterThan(1)
    expect(second.stdout() + second.stderr()).not.toMatch(/dead-lettered/)
    expect(await wrongContacts(id)).toEqual([])
    await run(sim().setFaults({}))
  }, 240_000)

  it("kill -9 while a job runs, and the job lands late: the restarted worker waits for it before the contacts' later updates (the job is shared on the suppressions topic), so it cannot re-subscribe them", async () => {
    const id = `f${Date.now().toString(36)}`
    const topic = `delivery-${id}`
    const group = `signal-mailjet-${id}`
    await createTopic(topic, PARTITIONS)
    const emails = Array.from({ length: 30 }, (_, i) => `late-${id}-${i}@example.com`)
    const event = (email: string, kind: string, consent: boolean) => ({
      key: email,
      value: JSON.stringify({ type: "track", event: kind, messageId: `${kind}-${email}`, context: { traits: { email }, consent: { marketing: consent } } })
    })
    await produce(topic, emails.map((e) => event(e, "Signed Up", true)))
    // The first worker's jobs land 16 s after they are posted, whatever is sent meanwhile: well
    // after the second worker has joined (the group waits out the killed one's 6 s session first).
    await run(sim().setFaults({ jobStuckRate: 1, jobStuckMs: 16_000, jobDurationMs: 100 }))
    const env = await workerEnv(sim(), id, {
      MAILJET_MAX_RPS: "200",
      MAILJET_BULK: "always",
      MAILJET_BULK_SIZE: "100",
      MAILJET_BULK_JOB_TIMEOUT: "60 seconds",
      MAILJET_SHUTDOWN_TIMEOUT: "2 seconds",
      KAFKA_SESSION_TIMEOUT: "6 seconds"
    })
    const before = await jobsPosted()
    const first = startWorker(env)
    await waitFor("a bulk job started", async () => ((await jobsPosted()) > before ? true : undefined), 60_000)
    const posted = Date.now()
    // Long enough for the job to reach the topic; far less than the job takes.
    await new Promise((r) => setTimeout(r, 1500))
    first.proc.kill("SIGKILL")
    await first.exited

    // Meanwhile every contact unsubscribes; the next jobs take 100 ms.
    await produce(topic, emails.map((e) => event(e, "Unsubscribed", false)))
    await run(sim().setFaults({ jobDurationMs: 100 }))
    const second = startWorker({ ...env, PORT: String(await freePort()) })
    const end = (await endOffsets(topic)).map((o) => (o === 0 ? -1 : o))
    await waitFor("all committed", async () => {
      const c = await committedOffsets(group, topic, PARTITIONS)
      return JSON.stringify(c) === JSON.stringify(end) ? true : undefined
    }, 120_000)
    // The first worker's job has landed by now, whenever it was sent.
    await new Promise((r) => setTimeout(r, Math.max(0, posted + 17_000 - Date.now())))
    second.proc.kill("SIGTERM")
    expect(await second.exited).toBe(0)
    const wrong: Array<string> = []
    for (const email of emails) {
      const c = await run(sim().contact(email))
      const list = c._tag === "Some" ? c.value.lists.get(1) : undefined
      if (list !== "unsubscribed") wrong.push(`${email}: ${list}`)
    }
    expect(wrong).toEqual([])
    expect(second.stderr()).toMatch(/of another worker may still land/)
    await run(sim().setFaults({}))
  }, 240_000)

  it("a worker joins while jobs run (a rebalance): the first reads its jobs to their end before it hands over; no event lost, every contact's final state right", async () => {
    const id = `r${Date.now().toString(36)}`
    // Longer than a job (1.5 s) with room to spare: the hand-over waits for the jobs in flight instead
    // of leaving them running; the newcomer reads once they are done and committed.
    const { allCommitted, env } = await setUp(id, "10 seconds")
    const before = await jobsPosted()
    const first = startWorker(env)
    await waitFor("a bulk job started", async () => ((await jobsPosted()) > before ? true : undefined), 60_000)
    const second = startWorker({ ...env, PORT: String(await freePort()) })
    await allCommitted()
    for (const w of [first, second]) w.proc.kill("SIGTERM")
    expect(await first.exited).toBe(0)
    expect(await second.exited).toBe(0)
    // The first went through the hand-over, and the second worked some partitions.
    expect(first.stderr()).toMatch(/group rebalancing/)
    expect(second.stderr()).toMatch(/consuming delivery-\S+ as group \S+: partitions \d/)
    // A window's unsubscribes all reach the suppressions topic (one produce each once failed in bursts).
    expect(first.stderr() + second.stderr()).not.toMatch(/failed on the suppressions topic/)
    expect(first.stderr() + second.stderr()).not.toMatch(/dead-lettered|not attempted/)
    expect(await wrongContacts(id)).toEqual([])
    await run(sim().setFaults({}))
  }, 240_000)
})
