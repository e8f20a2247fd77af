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
import { makeSuppressions } from "../src/Suppressions.js"

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

