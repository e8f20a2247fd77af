/**
 * A replayed dead letter must never undo a newer consent decision, with `serve` and its
 * dead-letter topic on a real broker: kim signs up while a property is missing, then
 * unsubscribes; after the fix, `replay --topic` leaves kim unsubscribed and says why.
 */
import { describe, expect, it } from "vitest"
import { brokers, createTopic, freePort, produce, readTopic, startWorker, waitFor } from "./support/kafka.js"
import { runBin } from "./support/bin.js"
import { fileSimulator } from "./support/fileSimulator.js"
import { KEY, presetProperties, SECRET } from "./support/layers.js"
import { kim } from "./support/seed.js"


const { sim, run } = fileSimulator({ properties: presetProperties.filter((p) => p.name !== "signup_method") })

const mailjetEnv = () => ({
  MAILJET_API_KEY: KEY,
  MAILJET_SECRET_KEY: SECRET,
  MAILJET_LIST_ID: "1",
  MAILJET_BASE_URL: sim().url,
  MAILJET_MAX_RPS: "2000",
  MAILJET_RETRY_BASE: "10ms"
})

/** The CLI as a process, to its end, beside the broker. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string>) => runBin(args, { KAFKA_BROKERS: brokers().join(","), ...env })

const membership = async () =>
  (await run(sim().contacts)).find((c) => c.email === "kim@example.com")

describe("serve, its dead-letter topic, and replay --topic", () => {
  it("kim signs up while a property is missing, then unsubscribes: the replay of the topic leaves kim unsubscribed and says why", async () => {
    const id = `r${Date.now().toString(36)}`
    const topic = `delivery-${id}`
    await createTopic(topic, 3)
    await createTopic(`${topic}-dlq`, 1)
    // One contact, one key: the two events stay in order in one partition.
    await produce(topic, [
      { key: "kim@example.com", value: kim("Signed Up", { properties: { method: "email" } }) },
      { key: "kim@example.com", value: kim("Unsubscribed", {}) }
    ])
    const worker = startWorker({
      ...mailjetEnv(),
      // Sent while signup_method is missing: it is dead-lettered alone, for the replay below.
      MAILJET_MISSING_PROPERTIES: "allow",
      SIGNAL_INTEGRATION_ID: id,
      PORT: String(await freePort()),
      KAFKA_COMMIT_INTERVAL: "200ms",
      MAILJET_SHUTDOWN_TIMEOUT: "2s"
    })
    // Alone in its group, the worker reads as soon as it has joined.
    const dead = await readTopic(`${topic}-dlq`, 1, 40_000)
    expect(JSON.parse(dead[0]!.value)).toMatchObject({ error: "PropertyMissing", only: ["signup_method"] })
    await waitFor("kim unsubscribed", async () => ((await membership())?.lists.get(1) === "unsubscribed" ? true : undefined))
    worker.proc.kill("SIGTERM")
    expect(await worker.exited).toBe(0)

    expect((await cli(["check", "--create-missing-properties"], mailjetEnv())).code).toBe(0)
    const replay = await cli(["replay", "--topic", `${topic}-dlq`], mailjetEnv())
    expect(replay.code).toBe(0)
    const outcomes = replay.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(outcomes).toStrictEqual([expect.objectContaining({
      outcome: "delivered",
      action: "addnoforce",
      reason: "replayed properties only (signup_method); the event's own action (addforce) landed when it was first delivered"
    })])
    const after = await membership()
    expect(after?.lists.get(1)).toBe("unsubscribed")
    expect(after?.properties["signup_method"]).toBe("email")
  }, 60_000)

  it("replay wants a file or --topic, one of the two", async () => {
    const r = await cli(["replay"], mailjetEnv())
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("give a dead-letter file or --topic TOPIC")
  })
})

