/**
 * `scripts/kafka topic|produce|consume`, the README's local `serve` walk-through, run as a user
 * runs them against the real broker: partitions as asked, one record per NDJSON line keyed by
 * the normalised email (else anonymousId, else none), and every value printed back.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { expect, it } from "vitest"
import { brokers, endOffsets, readTopic } from "./support/kafka.js"

const script = fileURLToPath(new URL("../scripts/kafka", import.meta.url))
const kafka = (...args: Array<string>) =>
  execFileSync(script, args, {
    encoding: "utf8",
    env: { ...process.env, KAFKA_BROKERS: brokers().join(",") },
    stdio: ["ignore", "pipe", "pipe"],
    timeout: 60_000
  })

const lines = [
  JSON.stringify({ type: "track", event: "Signed Up", context: { traits: { email: " Jane.Doe@Example.com " } } }),
  JSON.stringify({ type: "identify", traits: { email: "jane.doe@example.com" }, anonymousId: "a-1" }),
  JSON.stringify({ type: "page", anonymousId: "a-2" }),
  "{not json"
]

it("topic, produce and consume work against the broker scripts/kafka assembles", () => {
  const topic = `tools-${Date.now()}-${process.pid}`
  expect(kafka("topic", topic, "4")).toBe(`topic ${topic} created with 4 partitions\n`)
  expect(kafka("topic", topic)).toBe(`topic ${topic} exists\n`)
  const file = join(mkdtempSync(join(tmpdir(), "kafka-tools-")), "events.ndjson")
  writeFileSync(file, `${lines[0]}\n\n${lines.slice(1).join("\n")}\n`)
  kafka("produce", topic, file)
  return (async () => {
    expect(await endOffsets(topic)).toHaveLength(4)
    const records = await readTopic(topic, lines.length)
    const keyOf = new Map(records.map((r) => [r.value, r.key]))
    expect([...keyOf.keys()].sort()).toEqual([...lines].sort())
    expect(lines.map((l) => keyOf.get(l))).toEqual(["jane.doe@example.com", "jane.doe@example.com", "a-2", undefined])
    expect(kafka("consume", topic).trimEnd().split("\n").sort()).toEqual([...lines].sort())
  })()
}, 90_000)

it("consume of a topic that does not exist yet prints nothing, names it on stderr, and exits 0 (no dead letters yet is no failure)", () => {
  const name = `missing-${Date.now()}`
  const r = spawnSync(script, ["consume", name], { encoding: "utf8", env: { ...process.env, KAFKA_BROKERS: brokers().join(",") } })
  expect(r.status).toBe(0)
  expect(r.stdout).toBe("")
  expect(r.stderr).toContain(`kafka consume: no topic ${name} (yet): nothing to print.`)
})

it("topic on an existing topic says how many partitions it has; another count is refused, exit 1, saying they can be added but not removed", () => {
  const topic = `tools-parts-${Date.now()}-${process.pid}`
  expect(kafka("topic", topic, "3")).toBe(`topic ${topic} created with 3 partitions\n`)
  expect(kafka("topic", topic, "3")).toBe(`topic ${topic} exists with 3 partitions\n`)
  let failure: { status: number; stdout: string; stderr: string } | undefined
  try {
    kafka("topic", topic, "6")
  } catch (e) {
    failure = e as { status: number; stdout: string; stderr: string }
  }
  expect(failure?.status).toBe(1)
  expect(failure?.stdout).toBe("")
  expect(failure?.stderr).toMatch(new RegExp(`^kafka topic: ${topic} exists with 3 partitions, not 6: it is kept as it is\\. Partitions can be added .* but never removed`))
  return endOffsets(topic).then((ends) => expect(ends).toHaveLength(3))
}, 90_000)
