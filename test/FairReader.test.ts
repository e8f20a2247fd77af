/** The fair reader over a real Node Readable in object mode, fed in bursts as a fetch answer is. */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck } from "effect"
import { Readable } from "node:stream"
import { fairly } from "../src/Kafka/FairReader.js"

interface Rec {
  readonly partition: number
  readonly offset: number
}

/** Bursts of records, each burst pushed at once (one fetch answer), partitions in fetch order. */
const Bursts = FastCheck.array(FastCheck.array(FastCheck.nat({ max: 3 }), { maxLength: 30 }), { maxLength: 6 })

const read = async (bursts: ReadonlyArray<ReadonlyArray<number>>) => {
  const next = new Map<number, number>()
  const records = bursts.map((b) => [...b].sort((x, y) => x - y).map((partition) => {
    const offset = next.get(partition) ?? 0
    next.set(partition, offset + 1)
    return { partition, offset }
  }))
  let i = 0
  const source = new Readable({
    objectMode: true,
    highWaterMark: 4,
    read() {
      // a later tick, like a fetch answer
      setImmediate(() => {
        if (i >= records.length) return void this.push(null)
        for (const r of records[i++]!) this.push(r)
      })
    }
  })
  const out: Array<Rec> = []
  for await (const r of fairly<Rec>(source)) out.push(r)
  return { records: records.flat(), out }
}

describe("fairly", () => {
  it.effect.prop(
    "law: every record comes out once, each partition's in their order",
    { bursts: Bursts },
    ({ bursts }) => Effect.promise(async () => {
      const { out, records } = await read(bursts.filter((b) => b.length > 0))
      expect([...out].sort((a, b) => a.partition - b.partition || a.offset - b.offset)).toStrictEqual(
        [...records].sort((a, b) => a.partition - b.partition || a.offset - b.offset)
      )
      for (const p of new Set(records.map((r) => r.partition))) {
        const offsets = out.filter((r) => r.partition === p).map((r) => r.offset)
        expect(offsets).toStrictEqual(offsets.map((_, k) => k))
      }
    })
  )

  it("law: within one fetch answer, the partitions take turns", async () => {
    const { out } = await read([[0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]])
    expect(out.slice(0, 6).map((r) => r.partition)).toStrictEqual([0, 1, 2, 0, 1, 2])
  })
})
