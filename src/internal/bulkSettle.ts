/**
 * Bulk, part three: settle. A window's plan (bulkPlan.ts) → its jobs (bulkJob.ts) beside the
 * contacts sent one by one → one outcome per event: the job's for a contact it took, a dead letter
 * for one it refused, and the per-event path for a contact whose job did not run to a readable end
 * (only once that job ended or passed its deadline, so its updates never overtake the job's).
 */
import * as Effect from "effect/Effect"
import type { Outcome } from "../Domain/Outcome.js"
import type { Action } from "../Preset/Preset.js"
import { type Ended, type JobContext, type Landed, makeJobs, type Verdict } from "./bulkJob.js"
import { type Group, indices, type Plan, planWindow, type WindowContacts } from "./bulkPlan.js"
import { stopOnFatal } from "./results.js"
import type { PackedSend } from "../Delivery/Prepare.js"
import type { makeSend, Send } from "./send.js"

/** The outcome of the window's `k`th update (`p`, read again from its pack), once its jobs ended. */
export interface OutcomeOf {
  readonly of: (p: PackedSend, k: number) => Outcome
}

const delivered = (p: PackedSend, job: number): Outcome => ({
  outcome: "delivered",
  action: p.body.Action,
  status: 201,
  attempts: 1,
  via: "bulk",
  job,
  ...(p.partial === undefined ? {} : { partial: p.partial }),
  ...(p.note === undefined ? {} : { note: p.note }),
  ...(p.demoted === undefined ? {} : { demoted: p.demoted })
})

/**
 * The usual end's outcomes. Objects, not closures made for each window: V8 keeps a function's
 * optimized code only while a closure of it lives, and a window's closure was compiled again for
 * nearly every window (65 times in 100 s of a backfill).
 */
class JobOutcomes implements OutcomeOf {
  constructor(
    private readonly batchOf: Int32Array,
    private readonly ends: ReadonlyArray<Ended | Verdict>,
    private readonly plain: ReadonlyArray<Map<Action, Outcome>>,
    private readonly stopped: ReadonlyArray<Outcome | undefined>
  ) {}
  of(p: PackedSend, k: number): Outcome {
    const b = this.batchOf[k]!
    const end = this.ends[b]!
    if (end._tag !== "Ended") return this.stopped[b]!
    if (p.partial !== undefined || p.note !== undefined || p.demoted !== undefined) return delivered(p, end.job)
    let o = this.plain[b]!.get(p.body.Action)
    if (o === undefined) this.plain[b]!.set(p.body.Action, o = delivered(p, end.job))
    return o
  }
}

/** Outcomes made already, by the update's place. */
class Listed implements OutcomeOf {
  constructor(private readonly out: ReadonlyArray<Outcome | undefined>) {}
  of(_: PackedSend, k: number): Outcome {
    return this.out[k]!
  }
}

/**
 * The usual end: every job read to its end or stopped, nothing refused, no contact one by one.
 * Each update's outcome is then its job's, made as the window's lines are, from the pack read a
 * piece at a time (a window's updates read back whole were most of its peak once its jobs ended).
 * Undefined for any other end: its updates are read whole.
 */
export const fromJobs = (plan: Plan, ends: ReadonlyArray<Ended | Verdict>): OutcomeOf | undefined => {
  if (plan.single.length > 0 || !ends.every((e) => e._tag === "Stopped" || (e._tag === "Ended" && e.rejected.size === 0))) return undefined
  const batchOf = new Int32Array(plan.size)
  // A loop, not a callback over a window's groups: one made for each window is compiled again for each (see JobOutcomes).
  for (let b = 0; b < plan.batches.length; b++) {
    // Not `indices`: an array for each contact of one event, a window's worth at once.
    for (const g of plan.batches[b]!.groups) {
      if (typeof g === "number") batchOf[g] = b
      else for (const i of g) batchOf[i] = b
    }
  }
  // Most events of a job have the same outcome: one object for them all.
  const plain = plan.batches.map(() => new Map<Action, Outcome>())
  const stopped = ends.map((e) => e._tag === "Stopped" ? { outcome: "not-attempted", reason: e.reason, ...(e.error === undefined ? {} : { error: e.error }) } as const : undefined)
  return new JobOutcomes(batchOf, ends, plain, stopped)
}

/** A run's bulk path: its jobs, and the per-event path (`send`) for what goes one by one. */
export const makeBulk = (ctx: JobContext & {
  readonly send: ReturnType<typeof makeSend>
  /** A contact erased before the window: sent one by one, measured against its erasure (bulkPlan). */
  readonly erased: (email: string) => boolean
}) => {
  const { config, lane, state } = ctx
  const { runJob } = makeJobs(ctx)
  // Admitted with its window (-1 is before any cut): a drain does not strand half a window.
  const sendOne = (p: Send) => Effect.catchAll(ctx.send(p, -1, state, lane), stopOnFatal(state))

  /**
   * One by one, in order per contact, contacts side by side; a fallback's reason kept on its lines.
   * A failed send whose job was given up at its deadline may have landed through the job after all:
   * delivered if the job is seen to complete without refusing its contact.
   */
  const oneByOne = (
    sends: ReadonlyArray<Send | undefined>,
    groups: ReadonlyArray<readonly [Group, string | undefined, (Effect.Effect<Landed | undefined> | undefined)?]>,
    into: Array<Outcome | undefined>
  ) =>
    Effect.forEach(groups, ([group, reason, landed]) =>
      Effect.forEach(indices(group), (i) =>
        Effect.flatMap(sendOne(sends[i]!), (o) => {
          if (reason === undefined || o.outcome !== "dead-lettered") return Effect.sync(() => void (into[i] = o))
          const failed: Outcome = { ...o, reason: `${reason}; then one by one: ${o.reason}` }
          return Effect.map(landed ?? Effect.succeed(undefined), (job) => {
            const p = sends[i]!
            into[i] = job !== undefined && !job.refused.has(p.email.toLowerCase()) ? delivered(p, job.job) : failed
          })
        }), { discard: true }), { concurrency: config.concurrency, discard: true })

  /**
   * The outcome of each of the window's events to send, by its place. `sends` is read once, and
   * `contacts` (the pack's) make the jobs' bodies: while the jobs run, a contact is its email and
   * its events' places.
   * `again` gives the same updates back, whole, for a fence, a contact sent one by one, a job not
   * read to its end or refused contacts (seldom).
   * `posted` is called once every job's POST is done (or failed): from then on the window holds no
   * update's body.
   */
  const window = (sends: Iterable<PackedSend>, contacts: WindowContacts, again: () => ReadonlyArray<Send>, posted: () => void = () => {}): Effect.Effect<OutcomeOf> =>
    settle(planWindow(sends, contacts, config.bulkSize, ctx.erased), again, posted)

  // Planned before the span: the span's generator holds its arguments, and `sends` must go.
  const settle = Effect.fn("Delivery.window")(function*(plan: Plan, again: () => ReadonlyArray<Send>, posted: () => void) {
    // A slot an event while the jobs run only if some contacts go one by one meanwhile.
    const out: Array<Outcome | undefined> = new Array(plan.single.length === 0 ? 0 : plan.size)
    const { batches } = plan
    // A job's emails, for a fence or a listener: read back from the pack, not held while it runs.
    const emailsOf = (groups: ReadonlyArray<Group>) => () => {
      const sends = again()
      return groups.map((g) => sends[indices(g)[0]!]!.email)
    }
    let posting = batches.length
    if (posting === 0) posted()
    const onePosted = () => {
      if (--posting === 0) posted()
    }
    // The contacts sent one by one, read again (seldom: replays, erasures): only theirs are kept.
    const replays: Array<Send | undefined> = []
    if (plan.single.length > 0) {
      const sends = again()
      for (const [g] of plan.single) for (const i of indices(g)) replays[i] = sends[i]
    }
    const [ends] = yield* Effect.all([
      Effect.forEach(batches, (batch) => runJob(batch, emailsOf(batch.groups), onePosted), { concurrency: "unbounded" }),
      oneByOne(replays, plan.single, out)
    ], { concurrency: 2 })
    const usual = fromJobs(plan, ends)
    if (usual !== undefined) return usual
    const later = again()
    out.length = plan.size
    const fallback: Array<readonly [Group, string, (Effect.Effect<Landed | undefined> | undefined)?]> = []
    for (let b = 0; b < batches.length; b++) {
      const { groups } = batches[b]!
      const end = ends[b]!
      // A job not read to its end: one verdict for all its contacts.
      if (end._tag === "Fallback") {
        for (const group of groups) fallback.push([group, end.reason, end.landed])
        continue
      }
      if (end._tag === "Stopped") {
        const o: Outcome = { outcome: "not-attempted", reason: end.reason, ...(end.error === undefined ? {} : { error: end.error }) }
        for (const group of groups) for (const i of indices(group)) out[i] = o
        continue
      }
      // Most events of a job have the same outcome: one object for them all.
      const plain = new Map<Action, Outcome>()
      for (let c = 0; c < groups.length; c++) {
        const group = groups[c]!
        const rejection = end.rejected.get(later[indices(group)[0]!]!.email.toLowerCase())
        if (rejection === undefined) {
          for (const i of indices(group)) {
            const p = later[i]!
            if (p.partial !== undefined || p.note !== undefined || p.demoted !== undefined) out[i] = delivered(p, end.job)
            else {
              let o = plain.get(p.body.Action)
              if (o === undefined) plain.set(p.body.Action, o = delivered(p, end.job))
              out[i] = o
            }
          }
          continue
        }
        const e = rejection.error
        // Properties alone refused: one by one, so the rest of each update still lands (partial).
        if (e.properties !== undefined) {
          fallback.push([group, `bulk job ${end.job} refused properties (${e.properties.join(", ")})`])
          continue
        }
        const o: Outcome = { outcome: "dead-lettered", error: e._tag, reason: e.message, attempts: 1, via: "bulk", job: end.job }
        for (const i of indices(group)) out[i] = o
      }
    }
    if (fallback.length > 0) {
      yield* Effect.logWarning(`bulk: ${fallback.length} contacts sent one by one: ${[...new Set(fallback.map(([, r]) => r))].slice(0, 3).join("; ")}`)
    }
    yield* oneByOne(later, fallback, out)
    return new Listed(out)
  })

  return { window }
}