/**
 * The consent loop in `serve`, end to end over real sockets: the simulator's recipient unsubscribes,
 * Mailjet's event callback reaches one worker's /mailjet/events, the suppression is stored in the
 * group's compacted topic, and the other worker (and a restarted one) does not re-subscribe the
 * contact on standing consent; an explicit Subscribed does.
 */
import * as Http from "node:http"
import { Producer, stringSerializers } from "@platformatic/kafka"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { runBin } from "./support/bin.js"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import { brokers, createTopic, freePort, produce, readTopic, setTopicConfig, startWorker, stopWorker, waitFor, type Worker, workerMetric, workerReady } from "./support/kafka.js"
import { KEY, SECRET } from "./support/layers.js"

const { sim, run } = fileSimulator({
  seed: 11,
  // Mailjet retries every 30 s for 24 h; here every 300 ms for a minute.
  callbacks: { retryEveryMs: 300, retryForMs: 60_000 }
})

const PARTITIONS = 2
const WEBHOOK_PASSWORD = "hook-pass-4711"
let seq = 0
const integration = async () => {
  // Each test starts from an empty account: preflight reads every unsubscribed contact of the list.
  await run(sim().reset)
  const id = `s${Date.now().toString(36)}${seq++}`
  await createTopic(`delivery-${id}`, PARTITIONS)
  return { id, topic: `delivery-${id}`, suppressions: `delivery-${id}-suppressions`, feedback: `feedback-${id}` }
}

const env = (id: string, feedback: string) =>
  workerEnv(sim(), id, {
    MAILJET_SHUTDOWN_TIMEOUT: "2 seconds",
    MAILJET_WEBHOOK_USER: "mailjet",
    MAILJET_WEBHOOK_PASSWORD: WEBHOOK_PASSWORD,
    KAFKA_FEEDBACK_TOPIC: feedback
  })

/** Into one partition, so the test decides which worker gets it. */
const produceTo = async (topic: string, partition: number, key: string, value: string) => {
  const producer = new Producer({ clientId: "test-producer", bootstrapBrokers: brokers(), serializers: stringSerializers })
  try {
    await producer.send({ messages: [{ topic, partition, key, value }] })
  } finally {
    await producer.close()
  }
}

const event = (name: string, email: string, consent?: boolean) =>
  JSON.stringify({
    type: "track",
    event: name,
    messageId: `${name}-${email}-${Math.random()}`,
    context: { traits: { email }, ...(consent === undefined ? {} : { consent: { marketing: consent } }) }
  })

const membership = (email: string) => run(Effect.map(sim().contact(email), (c) => c._tag === "Some" ? c.value.lists.get(1) : undefined))

/** What a recipient does to a Mailjet email (the unsubscribe link, a complaint…), in the simulator. */
const recipient = async (action: string, email: string) =>
  (await fetch(`${sim().url}/_sim/recipient/${action}`, {
    method: "POST",
    headers: { authorization: `Basic ${Buffer.from(`${KEY}:${SECRET}`).toString("base64")}`, "content-type": "application/json" },
    body: JSON.stringify({ Email: email })
  })).status

/** The partitions a worker consumes, from its last "consuming … partitions" line. */
const owned = (w: Worker): Array<number> | undefined => {
  const lines = w.stderr().split("\n").filter((l) => l.includes("consuming delivery-"))
  const last = lines.at(-1)?.match(/partitions ([\d,]+|none)/)?.[1]
  return last === undefined || last === "none" ? undefined : last.split(",").map(Number)
}

const post = (port: string, body: string, auth = `mailjet:${WEBHOOK_PASSWORD}`) =>
  fetch(`http://127.0.0.1:${port}/mailjet/events`, {
    method: "POST",
    headers: { authorization: `Basic ${Buffer.from(auth).toString("base64")}`, "content-type": "application/json" },
    body
  })

/**
 * The status for a body announced as `bytes` long, of which only the first KiB is sent: the worker
 * answers by the length and closes without reading the rest, so a client still writing could see
 * the connection closed before the answer.
 */
const postOversized = (port: string, bytes: number) =>
  new Promise<number>((resolve, reject) => {
    const request = Http.request({
      host: "127.0.0.1",
      port: Number(port),
      path: "/mailjet/events",
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`mailjet:${WEBHOOK_PASSWORD}`).toString("base64")}`,
        "content-type": "application/json",
        "content-length": String(bytes)
      }
    }, (response) => {
      response.resume()
      resolve(response.statusCode ?? 0)
      request.destroy()
    })
    request.on("error", reject)
    request.write("x".repeat(1024))
  })

describe("serve: Mailjet's own unsubscribes flow back", () => {
  it("unsubscribed by the recipient, the callback reaches worker 1, worker 2 demotes standing consent; Subscribed re-subscribes", async () => {
    const t = await integration()
    const e1 = await env(t.id, t.feedback)
    const e2 = { ...e1, PORT: String(await freePort()) }
    const w1 = startWorker(e1)
    const w2 = startWorker(e2)
    try {
      await workerReady(e1.PORT, w1)
      await workerReady(e2.PORT, w2)
      // After the rebalance each worker owns one partition.
      const [p1, p2] = await waitFor("one partition each", () => {
        const a = owned(w1)
        const b = owned(w2)
        return a?.length === 1 && b?.length === 1 && a[0] !== b[0] ? [a[0]!, b[0]!] as const : undefined
      }, 60_000)

      const registered = await runBin(
        ["check", "--register-webhook", `http://mailjet:${WEBHOOK_PASSWORD}@127.0.0.1:${e1.PORT}/mailjet/events`],
        { MAILJET_API_KEY: KEY, MAILJET_SECRET_KEY: SECRET, MAILJET_LIST_ID: "1", MAILJET_BASE_URL: sim().url }
      )
      expect(registered.stdout).toMatch(/event callback unsub \(\d+\): (created|updated)/)
      expect(registered.stdout).toMatch(/event callback bounce \(\d+\): (created|updated)/)
      expect(registered.stdout + registered.stderr).not.toContain(WEBHOOK_PASSWORD)

      const email = `lee-${t.id}@example.com`
      await produceTo(t.topic, p1, email, event("Signed Up", email, true))
      await waitFor("subscribed", async () => ((await membership(email)) === "subscribed" ? true : undefined))

      // The recipient follows the unsubscribe link; Mailjet posts the callback to worker 1.
      const before = (await run(sim().callbackStats)).delivered
      expect(await recipient("unsub", email)).toBe(200)
      expect(await membership(email)).toBe("unsubscribed")
      await waitFor("callback answered 200", async () => ((await run(sim().callbackStats)).delivered > before ? true : undefined))
      expect(w1.stderr()).toMatch(/webhook: stored 1 suppressions: unsub l\*\*\*@example\.com/)
      // Worker 2 has it from the group's topic.
      await waitFor("worker 2 learnt it", async () => ((await workerMetric(e2.PORT, "signal_mailjet_suppressions")) === 1 ? true : undefined))

      // Standing consent on worker 2's partition: sent as addnoforce, demoted, still unsubscribed.
      await produceTo(t.topic, p2, email, event("Order Completed", email, true))
      await waitFor("demoted on worker 2", async () =>
        (await workerMetric(e2.PORT, `signal_mailjet_events_total\\{outcome="delivered",event="Order Completed",reason="addnoforce\\+demoted"\\}`)) === 1
          ? true
          : undefined)
      expect(await membership(email)).toBe("unsubscribed")
      const sent = (await run(sim().requests)).filter((r) =>
        r.path.endsWith("/managecontact") && (r.body as { Email?: string } | undefined)?.Email === email
      )
      expect(sent.map((r) => (r.body as { Action: string }).Action)).toEqual(["addforce", "addnoforce"])

      // An explicit Subscribed (worker 2 again) re-subscribes, and lifts the suppression for the group.
      await produceTo(t.topic, p2, email, event("Subscribed", email))
      await waitFor("re-subscribed", async () => ((await membership(email)) === "subscribed" ? true : undefined))
      await waitFor("worker 1 saw the lift", async () => ((await workerMetric(e1.PORT, "signal_mailjet_suppressions")) === 0 ? true : undefined))

      // Upstream: the suppression as a Signal event on the feedback topic.
      const [feedback] = await readTopic(t.feedback, 1)
      expect(JSON.parse(feedback!.value)).toMatchObject({
        type: "track",
        event: "Mailjet Unsubscribed",
        traits: { email },
        properties: { email, reason: "unsub", source: "mailjet" }
      })
      // The topic holds the suppression, then the tombstone that lifted it.
      const stored = await readTopic(t.suppressions, 2)
      expect(stored.map((r) => [r.key, r.value === undefined || r.value === null ? null : JSON.parse(r.value).event])).toEqual([
        [email, "unsub"],
        [email, null]
      ])
      expect(w1.stdout() + w1.stderr() + w2.stdout() + w2.stderr()).not.toContain(email)
    } finally {
      await Promise.all([stopWorker(w1), stopWorker(w2)])
    }
  }, 180_000)

  it("the endpoint refuses bad credentials (401) and bodies that are not JSON (400), reads the rest one event at a time, and acknowledges other events", async () => {
    const t = await integration()
    const e = await env(t.id, t.feedback)
    const w = startWorker(e)
    try {
      await workerReady(e.PORT, w)
      const unsub = JSON.stringify({ event: "unsub", time: 1764400000, email: "x@example.com", mj_list_id: 1 })
      expect((await post(e.PORT, unsub, "mailjet:wrong")).status).toBe(401)
      expect((await fetch(`http://127.0.0.1:${e.PORT}/mailjet/events`, { method: "POST", body: unsub })).status).toBe(401)
      // Junk around the right credentials' base64, which Node's decoder would skip, is not a credential.
      const junk = `Basic !${Buffer.from(`mailjet:${WEBHOOK_PASSWORD}`).toString("base64")}*`
      expect((await fetch(`http://127.0.0.1:${e.PORT}/mailjet/events`, { method: "POST", headers: { authorization: junk }, body: unsub })).status)
        .toBe(401)
      const notJson = await post(e.PORT, "{\"event\": \"unsub\", \"email\": \"secret-person@example.com\"")
      expect(notJson.status).toBe(400)
      expect(await notJson.text()).not.toContain("secret-person")
      // Issue 29: JSON is read one event at a time, and a body refused whole lost its valid events:
      // an unsub without an email is skipped (counted below), an empty batch holds nothing to store.
      expect((await post(e.PORT, JSON.stringify({ event: "unsub", time: 1764400000 }))).status).toBe(200)
      expect((await post(e.PORT, JSON.stringify([]))).status).toBe(200)
      expect(await postOversized(e.PORT, 2 * 1024 * 1024)).toBe(413)
      // An open, and a soft bounce: acknowledged, nothing suppressed.
      const ignored = await post(e.PORT, JSON.stringify([
        { event: "open", time: 1764400000, email: "o@example.com" },
        { event: "bounce", time: 1764400000, email: "o@example.com", hard_bounce: false }
      ]))
      expect(ignored.status).toBe(200)
      expect(await workerMetric(e.PORT, "signal_mailjet_suppressions")).toBe(0)
      // A grouped second: spam and a hard bounce are both stored.
      const grouped = await post(e.PORT, JSON.stringify([
        { event: "spam", time: 1764400000, email: "S@Example.com", source: "JMRPP" },
        { event: "bounce", time: 1764400001, email: "b@example.com", hard_bounce: true, error: "user unknown" }
      ]))
      expect(grouped.status).toBe(200)
      await waitFor("both learnt", async () => ((await workerMetric(e.PORT, "signal_mailjet_suppressions")) === 2 ? true : undefined))
      const stored = await readTopic(t.suppressions, 2)
      expect(stored.map((r) => [r.key, JSON.parse(r.value).reason])).toEqual([
        ["s@example.com", "marked as spam in Mailjet at 2025-11-29T07:06:40Z"],
        ["b@example.com", "hard-bounced in Mailjet at 2025-11-29T07:06:41Z"]
      ])
      // Mailjet's loose types beside a valid unsubscribe: it is stored, what cannot be used is counted.
      const loose = await post(e.PORT, JSON.stringify([
        { event: "bounce", time: "1764400002", email: "soft@example.com", hard_bounce: "false", blocked: "" },
        { event: "unsub", time: "1764400003", email: "U@example.com", mj_list_id: "", MessageID: "19421777835146490" },
        { event: "spam", time: 1764400004, email: "z\u200b@example.com" },
        { event: "unsub", mj_list_id: null },
        "junk"
      ]))
      expect(loose.status).toBe(200)
      await waitFor("the unsub learnt", async () => ((await workerMetric(e.PORT, "signal_mailjet_suppressions")) === 3 ? true : undefined))
      expect((await readTopic(t.suppressions, 3)).slice(2).map((r) => [r.key, JSON.parse(r.value).reason])).toEqual([
        ["u@example.com", "unsubscribed in Mailjet at 2025-11-29T07:06:43Z"]
      ])
      expect(w.stderr()).toMatch(/webhook: 3 skipped: 2 without a usable email, 1 not an event object/)
      expect(await workerMetric(e.PORT, "signal_mailjet_webhook_events_skipped_total\\{reason=\"no_usable_email\"\\}")).toBe(3)
      expect(await workerMetric(e.PORT, "signal_mailjet_webhook_events_skipped_total\\{reason=\"not_an_event\"\\}")).toBe(1)
      expect(w.stdout() + w.stderr()).not.toMatch(/soft@|z\u200b@|U@example/)
      expect(w.stdout() + w.stderr()).not.toContain(WEBHOOK_PASSWORD)
    } finally {
      await stopWorker(w)
    }
  }, 120_000)

  it("loses nothing across a restart: a stored suppression still applies, and a callback posted while the worker is down is retried until it lands", async () => {
    const t = await integration()
    const e = await env(t.id, t.feedback)
    const first = startWorker(e)
    const a = `ann-${t.id}@example.com`
    const b = `bob-${t.id}@example.com`
    await workerReady(e.PORT, first)
    const registered = await runBin(
      ["check", "--register-webhook", `http://mailjet:${WEBHOOK_PASSWORD}@127.0.0.1:${e.PORT}/mailjet/events`],
      { MAILJET_API_KEY: KEY, MAILJET_SECRET_KEY: SECRET, MAILJET_LIST_ID: "1", MAILJET_BASE_URL: sim().url }
    )
    expect(registered.code).toBe(0)
    for (const email of [a, b]) await produceTo(t.topic, 0, email, event("Signed Up", email, true))
    await waitFor("both subscribed", async () =>
      (await membership(a)) === "subscribed" && (await membership(b)) === "subscribed" ? true : undefined)

    // Ann unsubscribes while the worker runs: stored.
    const before = (await run(sim().callbackStats)).delivered
    expect(await recipient("unsub", a)).toBe(200)
    await waitFor("ann's callback answered", async () => ((await run(sim().callbackStats)).delivered > before ? true : undefined))
    expect(await stopWorker(first)).toBe(0)

    // Bob complains while no worker listens: the simulator retries.
    expect(await recipient("spam", b)).toBe(200)
    await new Promise((r) => setTimeout(r, 1_000))
    expect((await run(sim().callbackStats)).pending).toBeGreaterThan(0)
    const restarted = startWorker(e)
    try {
      await workerReady(e.PORT, restarted)
      await waitFor("bob's callback landed", async () => ((await run(sim().callbackStats)).pending === 0 ? true : undefined), 30_000)
      expect(restarted.stderr()).toMatch(/webhook: stored 1 suppressions: spam b\*\*\*@example\.com/)
      await waitFor("both held", async () => ((await workerMetric(e.PORT, "signal_mailjet_suppressions")) === 2 ? true : undefined))
      for (const email of [a, b]) await produceTo(t.topic, 0, email, event("Order Completed", email, true))
      await waitFor("both demoted", async () =>
        (await workerMetric(e.PORT, `signal_mailjet_events_total\\{outcome="delivered",event="Order Completed",reason="addnoforce\\+demoted"\\}`)) === 2
          ? true
          : undefined)
      expect(await membership(a)).toBe("unsubscribed")
      expect(await membership(b)).toBe("unsubscribed")
    } finally {
      await stopWorker(restarted)
    }
  }, 180_000)
})

/** Many at once, as fast as the test can open them: Mailjet posts each second's callbacks for every URL together. */
const postAll = (bodies: ReadonlyArray<readonly [port: string, body: string]>) =>
  Promise.all(bodies.map(([port, body]) => post(port, body).then(async (r) => ({ status: r.status, text: await r.text() }))))

/** Subscribed, then unsubscribed in Mailjet by the recipient, with no callback URL registered: only the test's posts tell the workers. */
const unsubscribedInMailjet = async (emails: ReadonlyArray<string>) => {
  const auth = `Basic ${Buffer.from(`${KEY}:${SECRET}`).toString("base64")}`
  for (const email of emails) {
    const res = await fetch(`${sim().url}/v3/REST/contactslist/1/managecontact`, {
      method: "POST",
      headers: { authorization: auth, "content-type": "application/json" },
      body: JSON.stringify({ Email: email, Action: "addforce" })
    })
    expect(res.status).toBe(201)
    expect(await recipient("unsub", email)).toBe(200)
  }
}

describe("serve: callbacks that arrive together", () => {
  it("law: 200 simultaneous unsubscribes, three times: each one answered 200 is on the topic and in both workers' sets, and standing consent re-subscribes none", async () => {
    const t = await integration()
    const e1 = await env(t.id, t.feedback)
    const e2 = { ...e1, PORT: String(await freePort()) }
    const w1 = startWorker(e1)
    const w2 = startWorker(e2)
    const N = 200
    const RUNS = 3
    const emails = Array.from({ length: RUNS }, (_, r) => Array.from({ length: N }, (_, i) => `burst${r}-${i}-${t.id}@example.com`))
    try {
      // Both workers have read the list before Mailjet holds anyone as unsubscribed.
      await workerReady(e1.PORT, w1)
      await workerReady(e2.PORT, w2)
      await unsubscribedInMailjet(emails.flat())
      const stored = new Set<string>()
      for (const [r, run] of emails.entries()) {
        const time = Math.floor(Date.now() / 1000)
        const port = (i: number) => (i % 2 === 0 ? e1.PORT : e2.PORT)
        const answers = await postAll(run.map((email, i) => [port(i), JSON.stringify({ event: "unsub", time, email, mj_list_id: 1 })] as const))
        // The broker is up: nothing is refused. A 200 is a promise that the suppression is stored.
        expect(answers.map((a) => a.status)).toEqual(run.map(() => 200))
        // Applied by the receiving worker before its 200: each worker holds at least what it answered for.
        const total = (r + 1) * N
        expect(await workerMetric(e1.PORT, "signal_mailjet_suppressions")).toBeGreaterThanOrEqual(N / 2)
        expect(await workerMetric(e2.PORT, "signal_mailjet_suppressions")).toBeGreaterThanOrEqual(N / 2)
        for (const email of run) stored.add(email)
        const onTopic = await readTopic(t.suppressions, total, 20_000)
        expect(new Set(onTopic.map((m) => m.key))).toEqual(stored)
        for (const [name, port] of [["worker 1", e1.PORT], ["worker 2", e2.PORT]] as const) {
          await waitFor(`${name} holds all ${total}`, async () => ((await workerMetric(port, "signal_mailjet_suppressions")) === total ? true : undefined), 20_000)
        }
      }

      // Standing consent for every one of them, on both workers' partitions: demoted, none re-subscribed.
      const before = (await run(sim().requests)).length
      await produce(t.topic, emails.flat().map((email) => ({ key: email, value: event("Order Completed", email, true) })))
      const sent = await waitFor("every Order Completed sent", async () => {
        const s = (await run(sim().requests)).slice(before).filter((q) => q.path.endsWith("/managecontact"))
        return s.length >= RUNS * N ? s : undefined
      }, 60_000)
      expect(new Set(sent.map((q) => (q.body as { Email: string }).Email))).toEqual(stored)
      expect(new Set(sent.map((q) => (q.body as { Action: string }).Action))).toEqual(new Set(["addnoforce"]))
      const resubscribed = []
      for (const email of stored) if ((await membership(email)) !== "unsubscribed") resubscribed.push(email)
      expect(resubscribed).toEqual([])
    } finally {
      await Promise.all([stopWorker(w1), stopWorker(w2)])
    }
  }, 300_000)

  it("a second of 7,000 callbacks is stored whole on a topic that takes 64 KiB a batch; a record the topic refuses is a 503, and the next one is stored", async () => {
    const t = await integration()
    // The operator's own topic, with a batch limit far under the 512 KiB the writer sends at most.
    await createTopic(t.suppressions, 1)
    await setTopicConfig(t.suppressions, "max.message.bytes", String(64 * 1024))
    const e = await env(t.id, t.feedback)
    const w = startWorker(e)
    try {
      await workerReady(e.PORT, w)
      const time = Math.floor(Date.now() / 1000)
      const emails = Array.from({ length: 7_000 }, (_, i) => `many-${i}-${t.id}@example.com`)
      const body = JSON.stringify(emails.map((email) => ({ event: "unsub", time, email, mj_list_id: 1 })))
      expect(body.length).toBeLessThan(1024 * 1024)
      expect((await post(e.PORT, body)).status).toBe(200)
      expect(w.stderr()).toContain("webhook: stored 7000 suppressions: unsub m***@example.com, ")
      expect(w.stderr()).toContain(", and 6990 more")
      const onTopic = await readTopic(t.suppressions, emails.length, 30_000)
      expect(new Set(onTopic.map((m) => m.key))).toEqual(new Set(emails))
      expect(await workerMetric(e.PORT, "signal_mailjet_suppressions")).toBe(emails.length)
      expect((await readTopic(t.feedback, emails.length, 30_000)).length).toBe(emails.length)

      // Now the topic refuses even one record: not stored, so not a 200; Mailjet will retry.
      await setTopicConfig(t.suppressions, "max.message.bytes", "100")
      const refused = `refused-${t.id}@example.com`
      expect((await post(e.PORT, JSON.stringify({ event: "unsub", time, email: refused, mj_list_id: 1 }))).status).toBe(503)
      // Mailjet's retry once the topic takes it again: the writer is not stuck on the refusal.
      await setTopicConfig(t.suppressions, "max.message.bytes", String(1024 * 1024))
      expect((await post(e.PORT, JSON.stringify({ event: "unsub", time, email: refused, mj_list_id: 1 }))).status).toBe(200)
      expect((await readTopic(t.suppressions, emails.length + 1, 30_000)).map((m) => m.key)).toContain(refused)
      expect(await workerMetric(e.PORT, "signal_mailjet_suppressions")).toBe(emails.length + 1)
    } finally {
      await stopWorker(w)
    }
  }, 180_000)

  it("a 200 means the receiving worker holds it: each callback's suppression is in its set when the answer arrives", async () => {
    const t = await integration()
    const e = await env(t.id, t.feedback)
    const w = startWorker(e)
    try {
      await workerReady(e.PORT, w)
      const time = Math.floor(Date.now() / 1000)
      const held: Array<number | undefined> = []
      for (let i = 1; i <= 100; i++) {
        // A second's worth each time, as Mailjet groups them: 20 callbacks in one body.
        const body = JSON.stringify(Array.from({ length: 20 }, (_, j) => ({ event: "unsub", time, email: `held-${i}-${j}-${t.id}@example.com`, mj_list_id: 1 })))
        expect((await post(e.PORT, body)).status).toBe(200)
        held.push(await workerMetric(e.PORT, "signal_mailjet_suppressions"))
      }
      expect(held).toEqual(Array.from({ length: 100 }, (_, i) => (i + 1) * 20))
    } finally {
      await stopWorker(w)
    }
  }, 120_000)
})
