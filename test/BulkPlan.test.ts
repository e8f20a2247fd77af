/**
 * A window's plan (internal/bulkPlan.ts), read once, a piece at a time, keeping only each update's
 * action (its contact is the pack's, as its job sends it), as a law: every update of the window has exactly one place in it (a job's contact, or a
 * contact sent one by one), a contact's updates are together and in input order, and a job's
 * contact carries the fold of its updates in that order; so each event still gets one outcome, and
 * a contact's final state is the one its events give in their own order. And once its jobs ended
 * the usual way (bulkSettle's `fromJobs`), each update's outcome, made as its line is, is its own
 * job's.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { foldUpdates } from "../src/Delivery/Fold.js"
import type { Prepared } from "../src/Delivery/Prepare.js"
import type { Ended, Verdict } from "../src/internal/bulkJob.js"
import { indices, planWindow } from "../src/internal/bulkPlan.js"
import { fromJobs } from "../src/internal/bulkSettle.js"
import { TextPiecesBuilder } from "../src/internal/textPieces.js"
import { contactEntry } from "../src/Mailjet/MailjetShapes.js"

type Send = Extract<Prepared, { _tag: "Send" }>

const EMAILS = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"] as const
const Update = Schema.Struct({
  email: Schema.Literal(...EMAILS),
  action: Schema.Literal("addforce", "addnoforce", "unsub", "remove"),
  p: Schema.optional(Schema.Union(Schema.Literal("a", "b"), Schema.String, Schema.Finite, Schema.Boolean, Schema.Null)),
  q: Schema.optional(Schema.Union(Schema.String, Schema.Null)),
  name: Schema.optional(Schema.String),
  /** One sent one by one: a replay, an erasure. */
  alone: Schema.Literal("no", "no", "no", "replay", "erase")
})

const sendOf = (u: typeof Update.Type, line: number): Send => ({
  _tag: "Send",
  line,
  raw: undefined,
  text: undefined,
  messageId: undefined,
  event: "E",
  mapped: "E",
  email: u.email,
  action: u.action,
  body: {
    Email: u.email,
    ...(u.name === undefined ? {} : { Name: u.name }),
    Action: u.action,
    ...(u.p === undefined && u.q === undefined ? {} : { Properties: { ...(u.p === undefined ? {} : { p: u.p }), ...(u.q === undefined ? {} : { q: u.q }) } })
  },
  partial: undefined,
  explicit: false,
  eventAt: undefined,
  ...(u.alone === "replay" ? { replay: "event" as const } : u.alone === "erase" ? { erase: true as const } : {})
})

/** The updates' contacts as a window's pack holds them (small pieces, so contacts span several), and who each is. */
const contactsOf = (sends: ReadonlyArray<Send>) => {
  const b = new TextPiecesBuilder(64)
  const seen = new Map<string, number>()
  const firsts = sends.map((s, k) => {
    b.add(contactEntry(s.body))
    if (!seen.has(s.email)) seen.set(s.email, k)
    return seen.get(s.email)!
  })
  return { entries: b.finish(), firsts: Int32Array.from(firsts) }
}

/** A job's contacts, as it posts them. */
const posted = (contacts: Uint8Array | undefined): ReadonlyArray<unknown> => JSON.parse(Buffer.from(contacts!).toString("utf8"))

describe("BulkPlan", () => {
  it.prop(
    "law: a window's plan gives every update one place, a contact's together and in order, a job's contact the fold of its updates",
    {
      updates: Schema.Array(Update),
      bulkSize: Schema.Int.pipe(Schema.between(1, 4)),
      erased: Schema.Array(Schema.Literal(...EMAILS))
    },
    ({ bulkSize, erased, updates }) => {
      const sends = updates.map(sendOf)
      let read = 0
      // Read once, in order, as the window's pack gives them.
      const once = function*() {
        for (const s of sends) {
          read++
          yield s
        }
      }
      const plan = planWindow(once(), contactsOf(sends), bulkSize, (e) => erased.includes(e as typeof EMAILS[number]))
      expect(read).toBe(sends.length)
      expect(plan.size).toBe(sends.length)
      const seen = new Array<number>(sends.length).fill(0)
      const groups = [...plan.single.map(([g]) => g), ...plan.batches.flatMap((b) => b.groups)]
      const contacts = new Set<string>()
      for (const g of groups) {
        const places = indices(g)
        const email = sends[places[0]!]!.email
        // One group a contact, its places in input order, all of them.
        expect(contacts.has(email)).toBe(false)
        contacts.add(email)
        expect([...places]).toEqual(sends.flatMap((s, i) => (s.email === email ? [i] : [])))
        for (const i of places) seen[i]!++
      }
      expect(seen.every((n) => n === 1)).toBe(true)
      for (const [g] of plan.single) {
        const places = indices(g)
        const email = sends[places[0]!]!.email
        expect(erased.includes(email as typeof EMAILS[number]) || places.some((i) => sends[i]!.replay !== undefined || sends[i]!.erase === true)).toBe(true)
      }
      for (const b of plan.batches) {
        const contacts = posted(b.contacts)
        expect(contacts.length).toBe(b.groups.length)
        expect(b.groups.length).toBeGreaterThan(0)
        expect(b.groups.length).toBeLessThanOrEqual(bulkSize)
        b.groups.forEach((g, c) => {
          // A replay, an erasure or an erased contact is never in a job.
          expect(indices(g).some((i) => sends[i]!.replay !== undefined || sends[i]!.erase === true)).toBe(false)
          expect(erased.includes(sends[indices(g)[0]!]!.email as typeof EMAILS[number])).toBe(false)
          const body = foldUpdates(indices(g).map((i) => sends[i]!.body))
          const { Action: _, ...contact } = body
          expect(contacts[c]).toStrictEqual(contact)
          expect(body.Action).toBe(b.action)
        })
      }
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "law: once a window's jobs ended the usual way, each update's outcome is its own job's: delivered with its job and its own action (and what it says), or its stopped job's",
    {
      updates: Schema.Array(Update.pipe(Schema.pick("email", "action", "p"))),
      bulkSize: Schema.Int.pipe(Schema.between(1, 4)),
      ends: Schema.Array(Schema.Literal("ended", "ended", "stopped", "refused", "fallback")),
      demoted: Schema.Array(Schema.Boolean)
    },
    ({ bulkSize, demoted, ends, updates }) => {
      const sends = updates.map((u, i) => {
        const s = sendOf({ ...u, alone: "no" }, i)
        return demoted[i] === true ? { ...s, demoted: `unsubscribed by the event on line ${i}` } : s
      })
      const plan = planWindow(sends, contactsOf(sends), bulkSize)
      const verdicts: Array<Ended | Verdict> = plan.batches.map((_, b) => {
        const kind = ends[b % Math.max(1, ends.length)] ?? "ended"
        return kind === "stopped"
          ? { _tag: "Stopped", reason: `stopped ${b}` }
          : kind === "fallback"
          ? { _tag: "Fallback", reason: `fallback ${b}` }
          : { _tag: "Ended", job: 100 + b, rejected: new Map(kind === "refused" ? [[sends[indices(plan.batches[b]!.groups[0]!)[0]!]!.email, { email: "x", error: {} } as never]] : []) }
      })
      const outcomeOf = fromJobs(plan, verdicts)
      // Any other end: the updates are read whole, as before.
      if (verdicts.some((v) => v._tag === "Fallback" || (v._tag === "Ended" && v.rejected.size > 0))) {
        expect(outcomeOf).toBeUndefined()
        return
      }
      expect(outcomeOf).toBeDefined()
      plan.batches.forEach((batch, b) => {
        const v = verdicts[b]!
        for (const g of batch.groups) {
          for (const k of indices(g)) {
            const p = sends[k]!
            const o = outcomeOf!.of(p, k)
            if (v._tag === "Stopped") expect(o).toStrictEqual({ outcome: "not-attempted", reason: v.reason })
            else {
              expect(o).toMatchObject({ outcome: "delivered", via: "bulk", job: (v as Ended).job, action: p.body.Action })
              expect((o as { demoted?: string }).demoted).toBe(p.demoted)
            }
          }
        }
      })
    },
    { fastCheck: { numRuns: 500 } }
  )
})
