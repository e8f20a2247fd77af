/**
 * Deletion requests with `serve` on the real broker: one worker erases a contact, and the erasure,
 * shared on the group's suppressions topic (a keyed hash and a time, never the address), holds for
 * another worker process that reads an older event of the contact from the topic, and for
 * `replay --topic` of the dead-letter topic, whose older dead letter would otherwise re-create it.
 * An unsubscribed contact's erasure leaves its address on the topic only as a null (compaction
 * removes it), while another worker still keeps a newer standing consent from subscribing it.
 */
import { Option } from "effect"
import { describe, expect, it } from "vitest"
import { brokers, committedOffsets, createTopic, endOffsets, produce, readTopic, startWorker, waitFor } from "./support/kafka.js"
import { runBin } from "./support/bin.js"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import { KEY, presetProperties, SECRET } from "./support/layers.js"

// signup_method missing: the sign-up is delivered without it, and that property alone dead-lettered.
const { run, sim } = fileSimulator({ properties: presetProperties.filter((p) => p.name !== "signup_method") })

const JANE = "jane.gdpr@example.com"
const event = (name: string, timestamp: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: "track", event: name, timestamp, messageId: `${name}-${timestamp}`, traits: { email: JANE, first_name: "Jane" }, context: { consent: { marketing: true } }, ...extra })

const janeInMailjet = async () => Option.isSome(await run(sim().contact(JANE)))

const cli = (args: ReadonlyArray<string>) =>
  runBin(args, {
    KAFKA_BROKERS: brokers().join(","),
    MAILJET_API_KEY: KEY,
    MAILJET_SECRET_KEY: SECRET,
    MAILJET_LIST_ID: "1",
    MAILJET_BASE_URL: sim().url,
    MAILJET_RETRY_BASE: "10ms"
  })

describe("serve: deletion requests shared by the group", () => {
  it("an erasure by one worker holds for another worker's read of an older event, and for replay --topic of the dead letters", async () => {
    const id = `e${Date.now().toString(36)}`
    const topic = `delivery-${id}`
    await createTopic(topic, 2)
    await createTopic(`${topic}-dlq`, 1)
    await produce(topic, [
      { key: JANE, value: event("Signed Up", "2026-04-01T00:00:00Z", { properties: { method: "email" } }) },
      { key: JANE, value: event("Deletion Requested", "2026-04-03T00:00:00Z") }
    ])
    const first = startWorker(await workerEnv(sim(), id, { MAILJET_MISSING_PROPERTIES: "allow" }))
    // The sign-up's refused property, dead-lettered on its own, for a replay.
    const dead = await readTopic(`${topic}-dlq`, 1, 40_000)
    expect(JSON.parse(dead[0]!.value)).toMatchObject({ error: "PropertyMissing", only: ["signup_method"] })
    await waitFor("jane erased", async () => ((await run(sim().contacts)).some((c) => c.name === "Anonymized") ? true : undefined), 40_000)
    expect(await janeInMailjet()).toBe(false)
    // Shared on the group's topic as a keyed hash and a time.
    const shared = await waitFor("the erasure on the suppressions topic", async () => {
      const records = await readTopic(`${topic}-suppressions`, 1_000, 3_000)
      return records.find((r) => r.key?.startsWith("erasure:"))
    })
    expect(JSON.parse(shared.value)).toEqual({ at: Date.parse("2026-04-03T00:00:00Z") })
    expect(`${shared.key}${shared.value}`).not.toContain("jane")
    first.proc.kill("SIGTERM")
    expect(await first.exited).toBe(0)

    // An older event of jane under another key (another partition's, say a device's), read by a new
    // worker process: it knows of the erasure only through the topic.
    await produce(topic, [
      { key: "device-7", value: event("Order Completed", "2026-04-02T00:00:00Z", { properties: { revenue: 5 } }) },
      { key: "device-8", value: event("Order Completed", "2026-04-02T12:00:00Z", { properties: { revenue: 6 } }) }
    ])
    const second = startWorker(await workerEnv(sim(), id, { MAILJET_MISSING_PROPERTIES: "allow" }))
    const ends = await endOffsets(topic)
    await waitFor("the second worker's commits", async () => {
      const done = await committedOffsets(`signal-mailjet-${id}`, topic, 2)
      return done.every((o, p) => ends[p] === 0 || o >= ends[p]!) ? true : undefined
    }, 40_000)
    expect(await janeInMailjet()).toBe(false)
    expect(second.stderr()).toContain("erasures: 1 contacts erased by a deletion request")
    second.proc.kill("SIGTERM")
    expect(await second.exited).toBe(0)
    for (const text of [first.stderr(), first.stdout(), second.stderr(), second.stdout()]) expect(text).not.toContain(JANE)

    // The dead letter of the sign-up, replayed once the property exists: older than the erasure,
    // it is dropped, and jane stays erased. Without the group's tombstones it would re-create her.
    expect((await cli(["check", "--create-missing-properties"])).code).toBe(0)
    const replay = await cli(["replay", "--topic", `${topic}-dlq`])
    expect(replay.code, replay.stderr).toBe(0)
    const outcomes = replay.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(outcomes).toEqual([expect.objectContaining({ outcome: "dropped" })])
    expect(String(outcomes[0]!["reason"])).toContain("erased by a deletion request")
    expect(await janeInMailjet()).toBe(false)

    // A deletion request that was dead-lettered (Mailjet down), replayed: the erasure it does is
    // written to the group's topic for the workers.
    const BOB = "bob.gdpr@example.com"
    const auth = `Basic ${Buffer.from(`${KEY}:${SECRET}`).toString("base64")}`
    await fetch(`${sim().url}/v3/REST/contactslist/1/managecontact`, {
      method: "POST",
      headers: { authorization: auth, "content-type": "application/json" },
      body: JSON.stringify({ Email: BOB, Action: "addforce" })
    })
    const request = { type: "track", event: "Deletion Requested", timestamp: "2026-04-05T00:00:00Z", traits: { email: BOB } }
    await produce(`${topic}-dlq`, [{ key: BOB, value: JSON.stringify({ error: "MailjetUnavailable", reason: "HTTP 503", attempts: 3, at: new Date().toISOString(), line: 1, event: request }) }])
    const again = await cli(["replay", "--topic", `${topic}-dlq`])
    expect(again.stdout.trim().split("\n").map((l) => (JSON.parse(l) as Record<string, unknown>)["outcome"])).toEqual(["dropped", "erased"])
    expect(Option.isNone(await run(sim().contact(BOB)))).toBe(true)
    const erasures = await waitFor("both erasures on the suppressions topic", async () => {
      const found = (await readTopic(`${topic}-suppressions`, 1_000, 3_000)).filter((r) => r.key?.startsWith("erasure:"))
      return found.length === 2 ? found : undefined
    })
    expect(erasures.map((r) => JSON.parse(r.value).at).sort()).toEqual([Date.parse("2026-04-03T00:00:00Z"), Date.parse("2026-04-05T00:00:00Z")])
  }, 120_000)
})

describe("serve: the erasure of an unsubscribed contact", () => {
  it("writes null for the address on the suppressions topic; another worker still demotes a newer standing consent, re-creating the contact unsubscribed", async () => {
    const id = `u${Date.now().toString(36)}`
    const topic = `delivery-${id}`
    const ANN = "ann.gdpr@example.com"
    const annEvent = (name: string, timestamp: string, consent?: boolean) =>
      JSON.stringify({ type: "track", event: name, timestamp, messageId: `ann-${name}-${timestamp}`, traits: { email: ANN }, ...(consent === undefined ? {} : { context: { consent: { marketing: consent } } }) })
    await createTopic(topic, 1)
    await produce(topic, [
      { key: ANN, value: annEvent("Signed Up", "2026-04-01T00:00:00Z", true) },
      { key: ANN, value: annEvent("Unsubscribed", "2026-04-02T00:00:00Z") },
      { key: ANN, value: annEvent("Deletion Requested", "2026-04-03T00:00:00Z") }
    ])
    const first = startWorker(await workerEnv(sim(), id, { MAILJET_MISSING_PROPERTIES: "allow" }))
    // The topic read to its end, the last value per key: the address's is null, the erasure says unsub.
    const latest = await waitFor("the address's null and the erasure on the suppressions topic", async () => {
      const last = new Map<string | undefined, string | null | undefined>()
      // Not there until the worker made it.
      const records = await readTopic(`${topic}-suppressions`, 1_000, 3_000).catch(() => [])
      for (const r of records) last.set(r.key, r.value)
      return last.has(ANN) && (last.get(ANN) ?? null) === null && [...last.keys()].some((k) => k?.startsWith("erasure:")) ? last : undefined
    }, 40_000)
    expect(Option.isNone(await run(sim().contact(ANN))), "ann erased").toBe(true)
    const erasure = [...latest].find(([k]) => k?.startsWith("erasure:"))!
    expect(JSON.parse(erasure[1]!)).toEqual({ at: Date.parse("2026-04-03T00:00:00Z"), unsub: true })
    first.proc.kill("SIGTERM")
    expect(await first.exited).toBe(0)

    // A newer sign-up with standing consent, read by another worker process: ann comes back unsubscribed.
    await produce(topic, [{ key: ANN, value: annEvent("Signed Up", "2026-04-05T00:00:00Z", true) }])
    const second = startWorker(await workerEnv(sim(), id, { MAILJET_MISSING_PROPERTIES: "allow" }))
    const contact = await waitFor("ann re-created", async () => Option.getOrUndefined(await run(sim().contact(ANN))), 40_000)
    expect(contact.lists.get(1)).toBe("unsubscribed")
    const sent = (await run(sim().requests)).filter((r) => r.path.endsWith("/managecontact") && (r.body as { Email?: string } | undefined)?.Email === ANN)
    expect(sent.map((r) => (r.body as { Action: string }).Action)).toEqual(["addforce", "unsub", "unsub"])
    expect(second.stderr()).toContain("erasures: 1 contacts erased by a deletion request")
    second.proc.kill("SIGTERM")
    expect(await second.exited).toBe(0)
    for (const text of [first.stderr(), first.stdout(), second.stderr(), second.stdout()]) expect(text).not.toContain(ANN)
  }, 120_000)
})
