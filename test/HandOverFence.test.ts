/**
 * The hand-over's claims as each worker keeps them from the suppressions topic: another worker's
 * claim holds until its tombstone, this worker's own are never a fence for it, and a release
 * tombstones exactly what this worker claimed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeHandOverFence } from "../src/Kafka/HandOverFence.js"
import type { Outgoing } from "../src/Kafka/SuppressionWriter.js"
import type { Record } from "../src/Kafka/TopicReader.js"

const TOPIC = "delivery-x-suppressions"

const fence = () => {
  const written: Array<Outgoing> = []
  const f = makeHandOverFence({ topic: TOPIC, origin: "me", write: (readBack, plain) => Effect.sync(() => void written.push(...plain, ...readBack)) })
  return { f, written }
}

const record = (key: string, value: string | null) => ({ key, value, partition: 0, offset: 0n }) as unknown as Record

describe("hand-over claims", () => {
  it("another worker's claim holds until its tombstone; this worker's own never does", () => {
    const { f } = fence()
    f.learn(record("handover:2:other", JSON.stringify({ partition: 2, generation: 7, member: "m-1" })))
    f.learn(record("handover:3:me", JSON.stringify({ partition: 3, generation: 7, member: "m-0" })))
    expect(f.held([2, 3])).toStrictEqual([{ partition: 2, generation: 7, member: "m-1", key: "handover:2:other" }])
    expect(f.held([3])).toStrictEqual([])
    f.learn(record("handover:2:other", null))
    expect(f.held([2, 3])).toStrictEqual([])
  })

  it.effect("a claim is one record per partition under this worker's key; a new claim releases the partitions it no longer names, and a release all the rest", () =>
    Effect.gen(function*() {
      const { f, written } = fence()
      yield* f.claim([0, 1], 4, "m-0")
      expect(written.map((m) => [m.key, m.value])).toStrictEqual([
        ["handover:0:me", JSON.stringify({ partition: 0, generation: 4, member: "m-0" })],
        ["handover:1:me", JSON.stringify({ partition: 1, generation: 4, member: "m-0" })]
      ])
      written.length = 0
      yield* f.claim([1], 5, "m-0")
      expect(written.map((m) => [m.key, m.value])).toStrictEqual([
        ["handover:0:me", null],
        ["handover:1:me", JSON.stringify({ partition: 1, generation: 5, member: "m-0" })]
      ])
      written.length = 0
      yield* f.release
      expect(written.map((m) => [m.key, m.value])).toStrictEqual([["handover:1:me", null]])
      written.length = 0
      yield* f.release
      expect(written).toStrictEqual([])
    }))

  it.effect("a claim says how long its worker may take to release it, and another worker reads that", () =>
    Effect.gen(function*() {
      const { f, written } = fence()
      yield* f.claim([2], 4, "m-0", 31_000)
      expect(written.map((m) => [m.key, m.value])).toStrictEqual([
        ["handover:2:me", JSON.stringify({ partition: 2, generation: 4, member: "m-0", within: 31_000 })]
      ])
      const other = makeHandOverFence({ topic: TOPIC, origin: "other", write: () => Effect.void })
      other.learn(record("handover:2:me", written[0]!.value as string))
      expect(other.held([2])).toStrictEqual([{ partition: 2, generation: 4, member: "m-0", within: 31_000, key: "handover:2:me" }])
    }))
})
