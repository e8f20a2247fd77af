/**
 * What a bulk window holds while its jobs run, as laws: its items kept as line numbers
 * (internal/heldItems.ts) come back whole and in their places, so every event still gets its one
 * outcome line in input order; and a job's emails read back only when asked for
 * (Fences.openHeld with a function) fence exactly that job's contacts, from `hold` to its end.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { makeFences } from "../src/Delivery/Fences.js"
import { HeldItemsBuilder, HeldReasons, holdItems } from "../src/internal/heldItems.js"

/** A file's item held as its line, or one that carries more (a Kafka record's position, a replay's fields). */
const Item = Schema.Union(
  Schema.Struct({ line: Schema.Int.pipe(Schema.between(1, 2_000_000_000)), text: Schema.Literal("") }),
  Schema.Struct({
    line: Schema.Int.pipe(Schema.between(1, 1000)),
    text: Schema.Literal("", "{}"),
    position: Schema.optional(Schema.Struct({ partition: Schema.Int.pipe(Schema.between(0, 3)), offset: Schema.Literal("0", "17") })),
    replay: Schema.optional(Schema.Boolean)
  })
)

const EMAILS = ["a@x.io", "b@x.io", "c@x.io", "d@x.io"] as const
/** A job of this process: its contacts, whether its end is seen (closed) and whether it is held before or after that. */
const Job = Schema.Struct({
  emails: Schema.Array(Schema.Literal(...EMAILS)).pipe(Schema.minItems(1)),
  held: Schema.Literal("no", "before-close", "after-close"),
  closed: Schema.Boolean
})

describe("HeldWindow", () => {
  it.prop(
    "law: a window's held items give back every item, equal to the one held, in its place (one outcome line each, in input order)",
    { items: Schema.Array(Item) },
    ({ items }) => {
      const held = holdItems(items)
      expect(held.length).toBe(items.length)
      const back = Array.from({ length: held.length }, (_, i) => held.at(i))
      expect(back).toStrictEqual(items)
      // Key order too: a line written from it reads the same.
      expect(back.map((x) => JSON.stringify(x))).toEqual(items.map((x) => JSON.stringify(x)))
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "law: a window of lines one after the other (held as its first line and length) gives back every item in its place, and so does one with a gap or an item that carries more",
    {
      first: Schema.Int.pipe(Schema.between(1, 2_000_000_000)),
      length: Schema.Int.pipe(Schema.between(0, 40)),
      odd: Schema.NullOr(Schema.Struct({ at: Schema.Int.pipe(Schema.between(0, 39)), kind: Schema.Literal("gap", "back", "more") }))
    },
    ({ first, length, odd }) => {
      const items: Array<{ readonly line: number; readonly text: string; readonly replay?: boolean }> = Array.from({ length }, (_, i) => ({ line: first + i, text: "" }))
      if (odd !== null && odd.at < length) {
        const line = first + odd.at
        items[odd.at] = odd.kind === "gap" ? { line: line + 1, text: "" } : odd.kind === "back" ? { line: line - 1, text: "" } : { line, text: "", replay: true }
      }
      const held = holdItems(items)
      expect(held.length).toBe(length)
      expect(Array.from({ length }, (_, i) => held.at(i))).toStrictEqual(items)
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "law: a gathering's items, read while it fills and held when it ends, come back equal and in their places, gathering after gathering of one builder",
    {
      gatherings: Schema.Array(Schema.Struct({
        first: Schema.Int.pipe(Schema.between(1, 2_000_000_000)),
        // Runs of lines, long enough to outgrow what the builder starts with, and items that break them.
        steps: Schema.Array(Schema.Union(
          Schema.Struct({ kind: Schema.Literal("next", "gap", "back"), times: Schema.Int.pipe(Schema.between(1, 150)) }),
          Item
        )).pipe(Schema.maxItems(8))
      })).pipe(Schema.maxItems(4))
    },
    ({ gatherings }) => {
      const builder = new HeldItemsBuilder<typeof Item.Type>()
      for (const { first, steps } of gatherings) {
        const items: Array<typeof Item.Type> = []
        let line = first
        const each = steps.flatMap((step): ReadonlyArray<"next" | "gap" | "back" | typeof Item.Type> => ("kind" in step ? Array.from({ length: step.times }, () => step.kind) : [step]))
        for (const step of each) {
          const item = typeof step !== "string" ? step : { line: step === "next" ? line++ : step === "gap" ? (line += 2) : line - 1, text: "" as const }
          builder.push(item)
          items.push(item)
          expect(builder.length).toBe(items.length)
          expect(builder.at(items.length - 1)).toStrictEqual(item)
        }
        expect(Array.from({ length: builder.length }, (_, i) => builder.at(i))).toStrictEqual(items)
        const held = builder.hold()
        expect(builder.length).toBe(0)
        expect(held.length).toBe(items.length)
        expect(Array.from({ length: held.length }, (_, i) => held.at(i))).toStrictEqual(items)
      }
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "law: a window's held demotions give each demoted update its own reason, by its place, and none to the others",
    { demoted: Schema.Array(Schema.Struct({ gap: Schema.Int.pipe(Schema.between(1, 5)), reason: Schema.Literal("", "a", "unsubscribed by the event on line 7", "é ✓") })), sealTwice: Schema.Boolean },
    ({ demoted, sealTwice }) => {
      const held = new HeldReasons()
      const byPlace = new Map<number, string>()
      let place = -1
      for (const { gap, reason } of demoted) {
        place += gap
        held.add(place, reason)
        byPlace.set(place, reason)
      }
      held.seal()
      if (sealTwice) held.seal()
      for (let p = -1; p <= place + 1; p++) expect(held.get(p)).toBe(byPlace.get(p))
    },
    { fastCheck: { numRuns: 500 } }
  )

  it("keeps a file's items as numbers, whatever else the window holds", () => {
    const held = holdItems([{ line: 3, text: "" }, { line: 9, text: "" }])
    expect(held.at(1)).toStrictEqual({ line: 9, text: "" })
    const mixed = [{ line: 3, text: "" }, { line: 4, text: "", position: { partition: 0, offset: "7" } }]
    expect(holdItems(mixed).at(1)).toBe(mixed[1])
  })

  it.effect.prop(
    "law: a job opened held with its emails read on demand fences exactly its contacts from `hold` until its end, and reads them only if held or asked",
    { jobs: Schema.Array(Job).pipe(Schema.maxItems(6)) },
    ({ jobs }) =>
      Effect.gen(function*() {
        const fences = makeFences()
        const reads = jobs.map(() => 0)
        const opened = jobs.map((j, n) =>
          fences.openHeld(n + 1, () => {
            reads[n]!++
            return j.emails
          })
        )
        // The model: the contact's fence is the job that held it last, until that job's end.
        const model = new Map<string, number>()
        for (let n = 0; n < jobs.length; n++) {
          const j = jobs[n]!
          if (j.held === "before-close") {
            fences.hold(opened[n]!)
            for (const e of j.emails) model.set(e, n + 1)
          }
          if (j.closed) {
            yield* fences.close(opened[n]!)
            for (const e of j.emails) if (model.get(e) === n + 1) model.delete(e)
          }
          if (j.held === "after-close") {
            fences.hold(opened[n]!)
            if (!j.closed) for (const e of j.emails) model.set(e, n + 1)
          }
        }
        for (const email of EMAILS) {
          const fencing = model.get(email)
          expect(fences.of([email]).map((f) => f.job)).toEqual(fencing === undefined ? [] : [fencing])
        }
        for (let n = 0; n < jobs.length; n++) {
          const j = jobs[n]!
          // Read once when held before its end, never otherwise (nobody listens).
          expect(reads[n]).toBe(j.held === "before-close" || (j.held === "after-close" && !j.closed) ? 1 : 0)
          expect([...opened[n]!.emails]).toEqual(j.emails)
          expect([...opened[n]!.emails]).toEqual(j.emails)
          expect(reads[n]).toBeLessThanOrEqual(1)
        }
      }),
    { fastCheck: { numRuns: 500 } }
  )
})
