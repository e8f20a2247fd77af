/**
 * The outcome counter (`signal_mailjet_events_total`) finds its series through the last few outcome
 * objects it counted, shared by a bulk window's events. Law: every event is counted once, under its
 * own outcome, event and reason, whichever outcome objects the events share or only equal.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricLabel, Schema } from "effect"
import type { Outcome } from "../src/Domain/Outcome.js"
import * as Metrics from "../src/Delivery/Metrics.js"

const KINDS: ReadonlyArray<readonly [Outcome, string, string]> = [
  [{ outcome: "delivered", action: "addforce", status: 201, attempts: 1, via: "bulk", job: 1 }, "delivered", "addforce"],
  [{ outcome: "delivered", action: "unsub", status: 201, attempts: 1, via: "bulk", job: 2 }, "delivered", "unsub"],
  [{ outcome: "delivered", action: "addnoforce", status: 201, attempts: 1, demoted: "d", note: "d" }, "delivered", "addnoforce+demoted"],
  [{ outcome: "dropped", reason: "no email" }, "dropped", "no email"],
  [{ outcome: "dead-lettered", error: "InvalidContact", reason: "bad", attempts: 1 }, "dead-lettered", "InvalidContact"],
  [{ outcome: "not-attempted", reason: "stopped" }, "not-attempted", "stopped"]
]

let runs = 0

describe("outcome counts", () => {
  it.effect.prop(
    "law: each event counted once under its outcome, event and reason, whichever outcome objects events share",
    {
      events: Schema.Array(Schema.Struct({
        kind: Schema.Int.pipe(Schema.between(0, KINDS.length - 1)),
        event: Schema.Literal("A", "B"),
        // An outcome equal to a shared one but not the same object.
        fresh: Schema.Boolean
      })).pipe(Schema.maxItems(40))
    },
    ({ events }) =>
      Effect.gen(function*() {
        // Event names of their own: the registry is the process's.
        const run = `law-${runs++}`
        const model = new Map<string, number>()
        for (const e of events) {
          const [shared, outcome, reason] = KINDS[e.kind]!
          const o = e.fresh ? { ...shared } : shared
          Metrics.countOutcomeNow(`${run}-${e.event}`, o, [])
          const key = `${outcome}|${run}-${e.event}|${reason}`
          model.set(key, (model.get(key) ?? 0) + 1)
        }
        for (const [, outcome, reason] of KINDS) {
          for (const event of ["A", "B"]) {
            const counter = Metrics.outcomes.pipe(Metric.taggedWithLabels([
              MetricLabel.make("outcome", outcome),
              MetricLabel.make("event", `${run}-${event}`),
              MetricLabel.make("reason", reason)
            ]))
            const { count } = yield* Metric.value(counter)
            expect(count).toBe(model.get(`${outcome}|${run}-${event}|${reason}`) ?? 0)
          }
        }
      }),
    { fastCheck: { numRuns: 200 } }
  )
})
