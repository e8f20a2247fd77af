/**
 * Standing consent never re-subscribes (issue: the consent loop). Random interleavings of Signal
 * events and recipient-side unsubscribes (the link in an email, a spam complaint, a hard bounce,
 * as Mailjet reports them) go through delivery's decision stage in order.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { Consent } from "../src/Consent.js"
import { applySuppressions, prepareLine } from "../src/Delivery/Prepare.js"
import { Mapping } from "../src/Mapping.js"
import { makeSuppressions, UnsubscribedByLine } from "../src/Suppressions.js"

const Step = Schema.Union(
  Schema.Struct({
    kind: Schema.Literal("Signed Up", "Order Completed", "Identified"),
    consent: Schema.Literal("granted", "withdrawn", "unknown")
  }),
  Schema.Struct({ kind: Schema.Literal("Subscribed", "Unsubscribed") }),
  // Mailjet's own: the recipient unsubscribed, complained or hard-bounced.
  Schema.Struct({ kind: Schema.Literal("recipient"), reason: Schema.Literal("unsub", "spam", "bounce") }),
  // Learnt from the group's suppressions topic while the run goes on (serve): another worker
  // stored a callback, or lifted one for an explicit Subscribed it sent.
  Schema.Struct({ kind: Schema.Literal("group"), change: Schema.Literal("suppressed", "lifted") })
)
type Step = typeof Step.Type

const mapping = Mapping.make()
const consent = Consent.make()

const line = (step: Exclude<Step, { kind: "recipient" | "group" }>): string =>
  JSON.stringify({
    type: "track",
    event: step.kind,
    traits: { email: "c@example.com" },
    ...("consent" in step && step.consent !== "unknown"
      ? { context: { consent: { marketing: step.consent === "granted" } } }
      : {})
  })

/** What was sent for each Signal event, in order, and whether the contact was suppressed before it. */
const decide = (steps: ReadonlyArray<Step>) => {
  const suppressions = makeSuppressions()
  const sent: Array<{ readonly step: Step; readonly action: string; readonly suppressedBefore: boolean; readonly demoted?: string }> = []
  let suppressed = false
  steps.forEach((step, i) => {
    if (step.kind === "recipient") {
      suppressions.add("c@example.com", { reason: `${step.reason} in Mailjet` })
      suppressed = true
      return
    }
    if (step.kind === "group") {
      suppressions.learn("c@example.com", step.change === "suppressed" ? { reason: "unsub in Mailjet, from the group" } : undefined)
      suppressed = step.change === "suppressed"
      return
    }
    const p = prepareLine(line(step), i + 1, consent.resolve, mapping, mapping.preset.datatypes)
    if (p._tag !== "Send") throw new Error(`not sent: ${JSON.stringify(p)}`)
    const decided = applySuppressions(p, suppressions)
    expect(decided.body.Action).toBe(decided.action)
    sent.push({
      step,
      action: decided.action,
      suppressedBefore: suppressed,
      ...(decided.demoted === undefined ? {} : { demoted: decided.demoted })
    })
    if (decided.action === "unsub") suppressed = true
    if (step.kind === "Subscribed") suppressed = false
  })
  return sent
}

const Steps = Schema.Array(Step).pipe(Schema.maxItems(12))

describe("suppressions: standing consent never re-subscribes", () => {
  it.prop(
    "after a suppression (recipient-side or an unsubscribe), addforce is sent only for an explicit Subscribed",
    [Steps],
    ([steps]) => {
      for (const s of decide(steps)) {
        if (s.suppressedBefore && s.action === "addforce") expect(s.step.kind).toBe("Subscribed")
      }
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "a contact not suppressed keeps its mapped action: consent granted is addforce",
    [Steps],
    ([steps]) => {
      for (const s of decide(steps)) {
        if (!s.suppressedBefore && "consent" in s.step && s.step.consent === "granted") expect(s.action).toBe("addforce")
        if (s.action === "addnoforce" && "consent" in s.step && s.step.consent === "granted") {
          // Demoted, and the outcome says why.
          expect(s.demoted).toEqual(expect.any(String))
        }
      }
    },
    { fastCheck: { numRuns: 500 } }
  )

  it("a recipient-side unsubscribe, then consent granted, then Subscribed: addnoforce (demoted, with why), then addforce", () => {
    const sent = decide([
      { kind: "Signed Up", consent: "granted" },
      { kind: "recipient", reason: "unsub" },
      { kind: "Order Completed", consent: "granted" },
      { kind: "Subscribed" },
      { kind: "Order Completed", consent: "granted" }
    ])
    expect(sent.map((s) => [s.action, s.demoted])).toStrictEqual([
      ["addforce", undefined],
      ["addnoforce", "unsub in Mailjet"],
      ["addforce", undefined],
      ["addforce", undefined]
    ])
  })
})


/** One change to a suppression set: the run's own unsubscribe (a line), one learnt, a lift, a lookup. */
const Op = Schema.Struct({
  kind: Schema.Literal("own", "added", "learnt", "learnt-lift", "lift"),
  contact: Schema.Int.pipe(Schema.between(0, 1499)),
  line: Schema.Int.pipe(Schema.between(0, 2 ** 40))
})

describe("suppression set", () => {
  it.prop(
    "law: it answers as a map from email to its latest suppression, and tells listeners of new ones and lifts, as the table grows and reuses slots",
    // A backfill's own unsubscribes first (a random array stays short), so the table grows.
    [Schema.Int.pipe(Schema.between(0, 1500)), Schema.Array(Op).pipe(Schema.maxItems(2500))],
    ([backfill, changes]) => {
      const set = makeSuppressions([["learnt@example.com", { reason: "at start" }]])
      const model = new Map<string, string>([["learnt@example.com", "at start"]])
      const told: Array<string> = []
      const expected: Array<string> = []
      set.observe({ added: (email) => told.push(`added ${email}`), lifted: (email) => told.push(`lifted ${email}`) })
      const ops = [...Array.from({ length: backfill }, (_, contact) => ({ kind: "own" as const, contact, line: contact + 1 })), ...changes]
      for (const { contact, kind, line } of ops) {
        const email = `c${contact}@example.com`
        if (kind === "own" || kind === "added") {
          if (!model.has(email)) expected.push(`added ${email}`)
          const s = kind === "own" ? new UnsubscribedByLine(line) : { reason: `added ${line}` }
          set.add(email, s)
          model.set(email, s.reason)
        } else if (kind === "learnt") {
          set.learn(email, { reason: `learnt ${line}` })
          model.set(email, `learnt ${line}`)
        } else if (kind === "learnt-lift") {
          set.learn(email, undefined)
          model.delete(email)
        } else {
          if (model.delete(email)) expected.push(`lifted ${email}`)
          set.lift(email)
        }
      }
      for (let c = 0; c < 1500; c++) expect(set.get(`c${c}@example.com`)?.reason).toBe(model.get(`c${c}@example.com`))
      expect(set.get("learnt@example.com")?.reason).toBe(model.get("learnt@example.com"))
      expect(set.size()).toBe(model.size)
      expect(told).toStrictEqual(expected)
    },
    { fastCheck: { numRuns: 60 } }
  )
})
