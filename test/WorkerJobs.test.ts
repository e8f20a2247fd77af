/**
 * `serve` with MAILJET_BULK=always on the real broker, and forged bulk-job records on the group's
 * suppressions topic before it starts: one dated ten years ahead, one for a job Mailjet answers 404
 * for. Neither holds delivery beyond MAILJET_BULK_JOB_TIMEOUT, and the log names each job.
 */
import { describe, expect, it } from "vitest"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import { committedOffsets, createTopic, endOffsets, produce, readTopic, setTopicConfig, startWorker, waitFor } from "./support/kafka.js"
import { KEY, SECRET } from "./support/layers.js"

const { run, sim } = fileSimulator({ seed: 29 })

const PARTITIONS = 3
const TIMEOUT_S = 20

describe("serve and forged bulk-job records on the real broker", () => {
  it("a record dated ten years ahead is refused, a job Mailjet does not know is released: every event, fenced or not, is delivered and committed within MAILJET_BULK_JOB_TIMEOUT", async () => {
    const id = `j${Date.now().toString(36)}`
    const topic = `delivery-${id}`
    const suppressions = `${topic}-suppressions`
    const group = `signal-mailjet-${id}`
    await createTopic(topic, PARTITIONS)
    await createTopic(suppressions, 1)
    await setTopicConfig(suppressions, "cleanup.policy", "compact")

    // Far above any JobID the simulator hands out.
    const futureJob = 900_000_000 + Math.floor(Math.random() * 1_000_000)
    const unknownJob = futureJob + 1
    const future = `future-${id}@example.com`
    const unknown = `unknown-${id}@example.com`
    const forged = (job: number, email: string, at: number) => ({
      key: `bulk-job:${job}:0`,
      value: JSON.stringify({ job, emails: [email], origin: "forged", at })
    })
    await produce(suppressions, [
      forged(futureJob, future, Date.now() + 10 * 365 * 24 * 3600 * 1000),
      forged(unknownJob, unknown, Date.now())
    ])

    const emails = [future, unknown, ...Array.from({ length: 30 }, (_, i) => `other-${id}-${i}@example.com`)]
    await produce(topic, emails.flatMap((email) => [
      {
        key: email,
        value: JSON.stringify({ type: "track", event: "Signed Up", messageId: `s-${email}`, context: { traits: { email, first_name: "First" }, consent: { marketing: true } } })
      },
      { key: email, value: JSON.stringify({ type: "identify", messageId: `i-${email}`, context: { traits: { email, first_name: "Last" } } }) }
    ]))
    const end = (await endOffsets(topic)).map((o) => (o === 0 ? -1 : o))
    // Every partition holds events of the window the fenced contacts are in.
    expect(end.every((o) => o > 0)).toBe(true)

    const env = await workerEnv(sim(), id, { MAILJET_BULK: "always", MAILJET_BULK_JOB_TIMEOUT: `${TIMEOUT_S} seconds` })
    const worker = startWorker(env)
    await waitFor(
      `ready on ${env["PORT"]}`,
      async () => ((await fetch(`http://127.0.0.1:${env["PORT"]}/ready`).catch(() => undefined))?.status === 200 ? true : undefined),
      60_000
    ).catch((e) => {
      throw new Error(`${(e as Error).message}\n${worker.stderr().split("\n").slice(-15).join("\n")}`)
    })
    // The fence of the unknown job is learnt before ready; from then on, within the timeout.
    await waitFor("all committed", async () => {
      const c = await committedOffsets(group, topic, PARTITIONS)
      return JSON.stringify(c) === JSON.stringify(end) ? true : undefined
    }, TIMEOUT_S * 1000).catch((e) => {
      throw new Error(`${(e as Error).message}\n${worker.stderr().split("\n").slice(-15).join("\n")}`)
    })
    worker.proc.kill("SIGTERM")
    expect(await worker.exited).toBe(0)

    const log = worker.stderr()
    expect(log).toMatch(new RegExp(`record \\\\"bulk-job:${futureJob}:0\\\\" \\(bulk job ${futureJob}, 0/0 of ${suppressions}\\) is dated 20\\d\\d-.*not waited for`))
    expect(log).not.toMatch(new RegExp(`bulk job ${futureJob} of another worker may still land`))
    expect(log).toMatch(new RegExp(`bulk job ${unknownJob} of another worker may still land`))
    expect(log).toMatch(new RegExp(`bulk job ${unknownJob} is unknown to Mailjet \\(HTTP 404: Object not found\\), so it can never land`))
    expect(log).not.toMatch(/Mailjet looks down|not attempted|dead-lettered|has not ended/)

    // Every contact as its events leave it.
    const wrong: Array<string> = []
    for (const email of emails) {
      const c = await run(sim().contact(email))
      const got = c._tag === "Some" ? `${c.value.lists.get(1)} ${String(c.value.properties["first_name"])}` : "absent"
      if (got !== "subscribed Last") wrong.push(`${email}: ${got}`)
    }
    expect(wrong).toEqual([])
    // The released job is tombstoned, so a restart does not fence its contact again; the future one stays for an operator.
    const records = await readTopic(suppressions, 3, 10_000)
    expect(records.filter((r) => r.key === `bulk-job:${unknownJob}:0`).map((r) => r.value ?? null)).toEqual([expect.any(String), null])
    expect(records.filter((r) => r.key === `bulk-job:${futureJob}:0`).length).toBe(1)
  }, 180_000)

  it("a job Mailjet knows and that never ends: the pause names it and its real reason, not an outage, and serve consumes again", async () => {
    const id = `k${Date.now().toString(36)}`
    const topic = `delivery-${id}`
    const suppressions = `${topic}-suppressions`
    await createTopic(topic, PARTITIONS)
    await createTopic(suppressions, 1)
    await setTopicConfig(suppressions, "cleanup.policy", "compact")
    const email = `stuck-${id}@example.com`
    // Another worker's job, stuck in Importing for ever: it may still land, so its contact waits.
    await run(sim().setFaults({ jobStuckRate: 1 }))
    const posted = await fetch(`${sim().url}/v3/REST/contactslist/1/managemanycontacts`, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from(`${KEY}:${SECRET}`).toString("base64")}`, "content-type": "application/json" },
      body: JSON.stringify({ Action: "addforce", Contacts: [{ Email: email }] })
    })
    const job = ((await posted.json()) as { Data: Array<{ JobID: number }> }).Data[0]!.JobID
    await run(sim().setFaults({}))
    await produce(suppressions, [{ key: `bulk-job:${job}:0`, value: JSON.stringify({ job, emails: [email], origin: "other", at: Date.now() }) }])
    await produce(topic, [{ key: email, value: JSON.stringify({ type: "identify", messageId: `i-${email}`, context: { traits: { email, first_name: "Later" } } }) }])

    const env = await workerEnv(sim(), id, { MAILJET_BULK: "always", MAILJET_BULK_JOB_TIMEOUT: "3 seconds" })
    const worker = startWorker(env)
    await waitFor("the pause", () => (/consuming again/.test(worker.stderr()) ? true : undefined), 60_000).catch((e) => {
      throw new Error(`${(e as Error).message}\n${worker.stderr().split("\n").slice(-15).join("\n")}`)
    })
    worker.proc.kill("SIGTERM")
    expect(await worker.exited).toBe(0)
    const log = worker.stderr()
    expect(log).toMatch(new RegExp(`waiting for bulk job ${job} of another worker, which has not ended: the later updates of its 1 contacts waited 3s \\(MAILJET_BULK_JOB_TIMEOUT\\).*: consuming again, its contacts still held back`))
    expect(log).not.toMatch(/Mailjet looks down/)
    // Held back: the job would overwrite it.
    const c = await run(sim().contact(email))
    expect(c._tag === "Some" ? c.value.properties["first_name"] : undefined).toBeUndefined()
  }, 120_000)
})
