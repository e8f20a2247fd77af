/**
 * The stdout line of a result (`outcomeLine`) reuses the last outcomes' part of the line, shared by
 * a bulk window's events. Law: every line is exactly what JSON.stringify writes of its fields, in
 * any order of results, whichever outcome objects they share, and whatever their text; written as
 * bytes (`OutcomeLines`, the CLI's stdout), each is that line's UTF-8 and its newline, in order.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { type Outcome, outcomeLine, type Result } from "../src/Domain/Outcome.js"
import { OutcomeLines } from "../src/Run/OutcomeLines.js"

/** The line as JSON.stringify writes it: the model. */
const model = (r: Result): string => {
  const o = r.outcome
  return JSON.stringify({
    line: r.line,
    messageId: r.messageId,
    event: r.event,
    outcome: o.outcome,
    action: "action" in o ? o.action : undefined,
    status: "status" in o ? o.status : undefined,
    attempts: "attempts" in o ? o.attempts : undefined,
    partial: o.outcome === "delivered" ? o.partial?.properties : undefined,
    demoted: o.outcome === "delivered" ? o.demoted : undefined,
    superseded: o.outcome === "delivered" ? o.superseded : undefined,
    reason: "reason" in o ? o.reason : o.outcome === "delivered" ? o.partial?.reason ?? o.note : undefined,
    error: "error" in o ? o.error : o.outcome === "delivered" ? o.partial?.error : undefined,
    via: "via" in o ? o.via : undefined,
    job: "job" in o ? o.job : undefined
  })
}

/** Any UTF-16 string, lone surrogates and quotes included. */
const Text = Schema.Array(
  // Printable ASCII, the units JSON escapes or writes as more than a byte (drawn often), any unit.
  Schema.Union(Schema.Int.pipe(Schema.between(0x20, 0x7e)), Schema.Literal(0x22, 0x5c, 0x0a, 0x1f, 0x7f, 0x80, 0xe9, 0x2028, 0xd83d, 0xde00), Schema.Int.pipe(Schema.between(0, 0xffff)))
).pipe(Schema.maxItems(12))
const text = (units: ReadonlyArray<number>) => String.fromCharCode(...units)

const Kind = Schema.Literal("delivered", "bulk", "partial", "demoted", "dropped", "dead", "stopped", "erased")
const outcomeOf = (kind: typeof Kind.Type, t: string, n: number): Outcome => {
  switch (kind) {
    case "delivered":
      return { outcome: "delivered", action: "addforce", status: 201, attempts: n }
    case "bulk":
      return { outcome: "delivered", action: "addnoforce", status: 201, attempts: 1, via: "bulk", job: n }
    case "partial":
      return { outcome: "delivered", action: "addforce", status: 201, attempts: 1, partial: { properties: [t], error: "InvalidContact", reason: t } }
    case "demoted":
      return { outcome: "delivered", action: "addnoforce", status: 201, attempts: 1, demoted: t, note: t }
    case "dropped":
      return { outcome: "dropped", reason: t }
    case "dead":
      return { outcome: "dead-lettered", error: "InvalidContact", reason: t, attempts: n, via: "bulk", job: n }
    case "stopped":
      return { outcome: "not-attempted", reason: t }
    case "erased":
      return { outcome: "erased", action: "erase", status: 200, attempts: n }
  }
}

const Outcomes = Schema.Array(Schema.Struct({ kind: Kind, text: Text, n: Schema.Int.pipe(Schema.between(0, 9)) })).pipe(Schema.minItems(1), Schema.maxItems(4))
const Draw = Schema.Struct({
  pick: Schema.Int.pipe(Schema.between(0, 9)),
  // A fresh outcome, equal to a shared one but not the same object.
  fresh: Schema.Boolean,
  line: Schema.Union(Schema.Int.pipe(Schema.between(0, 1_000_000)), Schema.Literal(-1, 1.5, 2 ** 53, Number.NaN)),
  messageId: Schema.UndefinedOr(Text),
  event: Schema.UndefinedOr(Text)
})

const resultsOf = (outcomes: typeof Outcomes.Type, draws: ReadonlyArray<typeof Draw.Type>): Array<Result> => {
  const shared = outcomes.map((o) => outcomeOf(o.kind, text(o.text), o.n))
  return draws.map((r) => {
    const o = outcomes[r.pick % outcomes.length]!
    return {
      line: r.line,
      raw: undefined,
      text: undefined,
      messageId: r.messageId === undefined ? undefined : text(r.messageId),
      event: r.event === undefined ? undefined : text(r.event),
      outcome: r.fresh ? outcomeOf(o.kind, text(o.text), o.n) : shared[r.pick % outcomes.length]!
    }
  })
}

describe("outcomeLine", () => {
  it.prop(
    "law: each line is what JSON.stringify writes of its result, whichever outcome objects the results share",
    { outcomes: Outcomes, results: Schema.Array(Draw).pipe(Schema.maxItems(30)) },
    ({ outcomes, results }) => {
      for (const result of resultsOf(outcomes, results)) expect(outcomeLine(result)).toBe(model(result))
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "law: outcome lines written as bytes are each line's UTF-8 and a newline, in order, across pieces taken and buffers grown",
    {
      outcomes: Outcomes,
      results: Schema.Array(Draw).pipe(Schema.maxItems(60)),
      // Where pieces are taken; long texts outgrow a piece's first buffer.
      takes: Schema.Array(Schema.Int.pipe(Schema.between(0, 60))).pipe(Schema.maxItems(4)),
      long: Schema.Int.pipe(Schema.between(0, 3))
    },
    ({ long, outcomes, results, takes }) => {
      const lines = new OutcomeLines()
      const pieces: Array<Buffer> = []
      const all = resultsOf(outcomes, results).map((r, i) =>
        i % 7 === 0 && long > 0 && r.messageId !== undefined ? { ...r, messageId: r.messageId.repeat(long * 9000) } : r
      )
      all.forEach((r, i) => {
        if (takes.includes(i)) pieces.push(lines.take())
        lines.add(r)
      })
      pieces.push(lines.take())
      const expected = all.map((r) => `${model(r)}\n`).join("")
      expect(Buffer.concat(pieces).toString("utf8")).toBe(expected)
      expect(Buffer.concat(pieces).equals(Buffer.from(expected, "utf8"))).toBe(true)
    },
    { fastCheck: { numRuns: 300 } }
  )
})
