/**
 * When a bulk job shared on the suppressions topic is waited for: its record's date is bounded on
 * both sides, so neither a forged date nor a clock far off holds contacts back beyond the rules.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { futureJobWarning, JOB_CLOCK_SKEW_MS, JOB_FORGOTTEN_AFTER_MS, sharedJobVerdict } from "../src/Kafka/SharedJobs.js"

const YEAR = 365 * JOB_FORGOTTEN_AFTER_MS
/** Any moment until 2100. */
const Now = Schema.Int.pipe(Schema.between(0, 4_102_444_800_000))

describe("shared bulk-job records", () => {
  it.prop(
    "law: a record dated beyond the clock-skew allowance is refused (never waited for), however far ahead",
    { now: Now, ahead: Schema.Int.pipe(Schema.between(1, 20 * YEAR)) },
    ({ ahead, now }) => {
      expect(sharedJobVerdict(now + JOB_CLOCK_SKEW_MS + ahead, now)).toBe("future")
    }
  )

  it.prop(
    "law: a record dated from a day ago to the allowance ahead is waited for",
    { now: Now, offset: Schema.Int.pipe(Schema.between(-JOB_FORGOTTEN_AFTER_MS, JOB_CLOCK_SKEW_MS)) },
    ({ now, offset }) => {
      expect(sharedJobVerdict(now + offset, now)).toBe("wait")
    }
  )

  it.prop(
    "law: a record older than a day is forgotten",
    { now: Now, older: Schema.Int.pipe(Schema.between(1, 20 * YEAR)) },
    ({ now, older }) => {
      expect(sharedJobVerdict(now - JOB_FORGOTTEN_AFTER_MS - older, now)).toBe("forgotten")
    }
  )

  it("numbers JSON can hold but no date can: 1e400 (Infinity) is refused, -1e400 forgotten; the warning still names key and job", () => {
    const now = Date.UTC(2026, 11, 5)
    expect(sharedJobVerdict(JSON.parse("1e400") as number, now)).toBe("future")
    expect(sharedJobVerdict(JSON.parse("-1e400") as number, now)).toBe("forgotten")
    const warning = futureJobWarning("bulk-job:77:0", 77, Infinity, "0/12 of delivery-x-suppressions")
    expect(warning).toContain(`record "bulk-job:77:0" (bulk job 77, 0/12 of delivery-x-suppressions) is dated Infinity`)
    expect(futureJobWarning("bulk-job:77:0\nforged", 77, now + 10 * YEAR, "0/12")).toContain(
      `"bulk-job:77:0\\nforged" (bulk job 77, 0/12) is dated 2036-`
    )
  })
})
