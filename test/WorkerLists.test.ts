/**
 * Issue 26: a `serve` worker that starts in a group that has already read the list makes the same
 * few Mailjet calls before it is ready, whatever the list's size. The group's topic keeps the
 * list's view (who is unsubscribed, with contact IDs) and when it was read; a worker finding it
 * fresh (MAILJET_SUPPRESSIONS_MAX_AGE) reads nothing of the list, and says how old it is.
 */
import { expect, it } from "vitest"
import { fileSimulator, workerEnv } from "./support/fileSimulator.js"
import { createTopic, startWorker, stopWorker, waitFor, workerMetric, workerReady } from "./support/kafka.js"

const small = fileSimulator({ seed: 31, seedContacts: { count: 2_000, unsubscribedRatio: 0.01 } })
const large = fileSimulator({ seed: 32, seedContacts: { count: 100_000, unsubscribedRatio: 0.01 } })

let seq = 0
/** A first worker reads the list's view into a fresh group; then a restart: the calls it made until ready. */
const restart = async (f: typeof small) => {
  const id = `lists${Date.now().toString(36)}${seq++}`
  await createTopic(`delivery-${id}`, 1)
  const env = await workerEnv(f.sim(), id)
  const first = startWorker(env)
  let firstCalls: ReadonlyArray<string>
  let firstLog: string
  try {
    await workerReady(env.PORT, first, 90_000)
    await waitFor("the view whole", async () => ((await workerMetric(env.PORT, "signal_mailjet_suppressions_view_whole")) === 1 ? true : undefined), 90_000)
    firstCalls = (await f.run(f.sim().requests)).map((r) => r.path)
    firstLog = first.stderr()
  } finally {
    expect(await stopWorker(first)).toBe(0)
  }
  const before = (await f.run(f.sim().requests)).length
  const second = startWorker(env)
  try {
    await workerReady(env.PORT, second, 90_000)
    const calls = (await f.run(f.sim().requests)).slice(before).map((r) => `${r.path.replace(/\?.*$/, "")}`)
    const age = await waitFor("the view's age", () => workerMetric(env.PORT, "signal_mailjet_suppressions_age_seconds"))
    const held = await workerMetric(env.PORT, "signal_mailjet_suppressions")
    return { firstCalls, firstLog, calls, age, held }
  } finally {
    expect(await stopWorker(second)).toBe(0)
  }
}

it("a restart in a group that has read the list costs the same calls for 2,000 contacts and for 100,000: none of them reads the list", async () => {
  const a = await restart(small)
  const b = await restart(large)
  // The first worker read the list: more calls for the larger one.
  const reads = (calls: ReadonlyArray<string>) => calls.filter((c) => /listrecipient|\/contact\?|\/contact\/\d/.test(c)).length
  expect(reads(b.firstCalls)).toBeGreaterThan(reads(a.firstCalls))
  // Too large to read before the first send, the first worker says it reads the view in the background.
  expect(b.firstLog).toContain("the list's view is read in the background")
  expect(a.firstLog).not.toContain("the list's view is read in the background")
  // The restart: preflight's own (the list, its properties), whatever the size, and nothing of the list's contacts.
  expect(a.calls).toStrictEqual(b.calls)
  expect(reads(a.calls)).toBe(0)
  expect(a.calls.length).toBeLessThanOrEqual(3)
  // Every unsubscribed contact of the list held, from the topic, and the view's age said.
  expect(a.held).toBe(20)
  expect(b.held).toBe(1_000)
  expect(a.age).toBeLessThan(60)
  expect(b.age).toBeLessThan(60)
}, 240_000)
