/** What a worker shares on the suppressions topic goes in produce calls Kafka takes, in order. */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { bounded, PRODUCE_BYTES, recordBytes } from "../src/Kafka/SuppressionWriter.js"

// Values from tombstones (null) to one larger than a run may hold.
const Sizes = Schema.Array(Schema.Union(Schema.Null, Schema.Int.pipe(Schema.between(0, 600_000))))
// Many small records too, past the 500 records a produce holds.
const Many = Schema.Int.pipe(Schema.between(0, 1_200))

describe("sharing on the suppressions topic", () => {
  it.prop(
    "law: every record goes once, in order, in runs of at most PRODUCE_BYTES and 500 records (a larger record alone), none empty",
    { sizes: Sizes, many: Many },
    ({ many, sizes }) => {
      const messages = [...sizes, ...Array.from({ length: many }, () => 1)].map((n, i) => ({
        topic: "t",
        key: String(i),
        value: n === null ? null : "x".repeat(n),
        headers: new Map([["h", String(i)]])
      }))
      const runs = bounded(messages, recordBytes)
      expect(runs.flat()).toStrictEqual(messages)
      const bytes = (run: ReadonlyArray<typeof messages[number]>) => run.reduce((sum, m) => sum + recordBytes(m), 0)
      for (const run of runs) {
        expect(run.length).toBeGreaterThan(0)
        expect(run.length).toBeLessThanOrEqual(500)
        if (run.length > 1) expect(bytes(run)).toBeLessThanOrEqual(PRODUCE_BYTES)
      }
      // Runs are as long as they may be: the next record would not have fitted.
      for (let r = 0; r + 1 < runs.length; r++) {
        if (runs[r]!.length < 500) expect(bytes(runs[r]!) + recordBytes(runs[r + 1]![0]!)).toBeGreaterThan(PRODUCE_BYTES)
      }
    },
    { fastCheck: { numRuns: 200 } }
  )
})
