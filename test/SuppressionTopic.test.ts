/** What a worker shares on the suppressions topic goes in produce calls Kafka takes, in order. */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { byteBounded, SHARE_BYTES } from "../src/Kafka/SuppressionTopic.js"

// Values from tombstones (null) to one larger than a run may hold.
const Sizes = Schema.Array(Schema.Union(Schema.Null, Schema.Int.pipe(Schema.between(0, 600_000))))

describe("sharing on the suppressions topic", () => {
  it.prop(
    "law: every record goes once, in order, in runs of at most SHARE_BYTES of values (a larger record alone), none empty",
    { sizes: Sizes },
    ({ sizes }) => {
      const messages = sizes.map((n, i) => ({ key: String(i), value: n === null ? null : "x".repeat(n) }))
      const runs = byteBounded(messages)
      expect(runs.flat()).toStrictEqual(messages)
      for (const run of runs) {
        expect(run.length).toBeGreaterThan(0)
        const bytes = run.reduce((sum, m) => sum + (m.value?.length ?? 0), 0)
        if (run.length > 1) expect(bytes).toBeLessThanOrEqual(SHARE_BYTES)
      }
      // Runs are as long as they may be: the next record would not have fitted.
      for (let r = 0; r + 1 < runs.length; r++) {
        const bytes = runs[r]!.reduce((sum, m) => sum + (m.value?.length ?? 0), 0)
        expect(bytes + (runs[r + 1]![0]!.value?.length ?? 0)).toBeGreaterThan(SHARE_BYTES)
      }
    },
    { fastCheck: { numRuns: 200 } }
  )
})
