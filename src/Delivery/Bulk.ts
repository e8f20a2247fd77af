/**
 * The bulk path: one window of prepared events → each contact's updates folded into one (Fold.ts)
 * → grouped by action into jobs of at most `bulkSize` contacts → POST, poll to the end, read the
 * error file → one outcome per event.
 *
 * A contact's updates never overtake each other: across windows, because a window starts only
 * once the earlier events of its contacts have ended (Delivery.ts); inside one, because a contact
 * is sent whole by one path, and one whose job failed is sent one by one only once the job has
 * ended or passed its deadline. A job whose end was not seen (its deadline, a stop) may still
 * land: its contacts stay fenced (Fences.ts) and a watcher polls it to its end.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type { Outcome } from "../Domain/Outcome.js"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type { BulkRejection } from "../Mailjet/MailjetClient.js"
import { CallStopped, type Lane, type MailjetGateway, transientRetries } from "../Mailjet/MailjetGateway.js"
import type { Action } from "../Preset/Preset.js"
import type { DeliverySettings } from "./DeliveryConfig.js"
import type { Fence, Fences } from "./Fences.js"
import { foldUpdates } from "./Fold.js"
import * as Metrics from "./Metrics.js"
import type { Prepared } from "./Prepare.js"
import type { RunState } from "./RunState.js"

type Send = Extract<Prepared, { _tag: "Send" }>
/** One contact's events in a window: their places in it (one place needs no array). */
type Group = number | Array<number>
const indices = (g: Group): ReadonlyArray<number> => typeof g === "number" ? [g] : g

/** The first job's first poll; later ones wait about as long as the last job took. Polls slow down to MAX_POLL. */
const FIRST_POLL = Duration.seconds(1)
const MAX_POLL = Duration.seconds(10)

/** A job read to its end: every contact not refused was accepted. */
interface Ended {
  readonly _tag: "Ended"
  readonly job: number
  readonly rejected: ReadonlyMap<string, BulkRejection>
}

/** How a whole job went when it was not read to its end. */
type Verdict =
  /** The job did not run to a readable end: its events go one by one. */
  | { readonly _tag: "Fallback"; readonly reason: string }
  | { readonly _tag: "Stopped"; readonly reason: string; readonly error?: string }

/** A job that did not run to a readable end: its events go one by one, this said on them. */
export class JobFallback extends Schema.TaggedError<JobFallback>()("JobFallback", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

export interface BulkDeps {
  readonly gateway: typeof MailjetGateway.Service
  /** The run's lane: its stop, and its count of failures in a row. */
  readonly lane: Lane
  readonly config: DeliverySettings
  readonly state: RunState
  /** The per-event path for one event: its outcome; fatal errors already turned into not-attempted. */
  readonly sendOne: (p: Send) => Effect.Effect<Outcome>
  readonly fences: Fences
  /** Watches, in the background, a job whose end was not seen (`watchJob`). */
  readonly watch: (fence: Fence) => Effect.Effect<void>
}

/** How long a poll waits at most: a short deadline (a test's) is polled more often. */
const slowestPoll = (config: DeliverySettings) => Math.min(Duration.toMillis(MAX_POLL), Duration.toMillis(config.bulkJobTimeout) / 4)

/**
 * A job whose end was not seen (this process's, or another's: Fences.learn): polled, outside any
 * run, until it ends, then its contacts are free. Never given up: a contact fenced for ever is held
 * back, not overwritten. Stops as well when another process saw the job end (Fences.forget), and
 * when Mailjet answers that it has no such job (404): one it does not know can never land.
 */
export const watchJob = (deps: Pick<BulkDeps, "gateway" | "config" | "fences">) => (fence: Fence) =>
  Effect.zipRight(Metric.increment(Metrics.bulkJobsUnfinished), Effect.gen(function*() {
    const { fences, gateway } = deps
    while (!(yield* Deferred.isDone(fence.ended))) {
      yield* Effect.sleep(slowestPoll(deps.config))
      const r = yield* Effect.either(gateway.paced(gateway.client.bulkJob(fence.job)))
      if (r._tag === "Right" && r.right.status === "Unknown") {
        yield* Effect.logWarning(`bulk job ${fence.job} is unknown to Mailjet (${r.right.error}), so it can never land: its fence on ${fence.emails.length} contacts is released`)
        return yield* fences.close(fence)
      }
      if (r._tag === "Right" && r.right.status !== "Running") {
        yield* Effect.logInfo(`bulk job ${fence.job} ended (${r.right.status}): its contacts' later updates go on`)
        return yield* fences.close(fence)
      }
    }
  })).pipe(Effect.ensuring(Metric.incrementBy(Metrics.bulkJobsUnfinished, -1)))

export const makeBulk = (deps: BulkDeps) => {
  const { config, fences, gateway, lane } = deps
  const client = gateway.client
  /** How long the last job took: the next job's first poll waits about that long, so most jobs take one poll. */
  let lastJobMs = Duration.toMillis(FIRST_POLL)

  const post = (action: Action, contacts: ReadonlyArray<Send["body"]>) => {
    const body = contacts.map(({ Action: _, ...rest }) => rest)
    return gateway.retrying(lane, client.manageManyContacts(action, body)).pipe(
      Effect.catchTags({
        BulkRefused: (e) => new JobFallback({ reason: `the bulk call failed (${e.message})` }),
        RetriesExhausted: (e) => new JobFallback({ reason: `the bulk call failed (${e.message})` })
      })
    )
  }

  const slowest = slowestPoll(config)
  // Polls are bounded by the job's deadline, not by attempts: the same schedule, without an end.
  const pollRetries = transientRetries({ base: config.retryBase, max: config.retryMax, attempts: Infinity })

  /** Polls until the job ends or its deadline passes. */
  const poll = (job: number, deadline: number) =>
    Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      let polls = 0
      let delay = Math.min(lastJobMs, slowest)
      const backoff = yield* Schedule.driver(pollRetries)
      while (true) {
        const now = yield* Clock.currentTimeMillis
        if (now >= deadline) {
          return yield* new JobFallback({ reason: `bulk job ${job} did not end within ${Duration.format(config.bulkJobTimeout)} (MAILJET_BULK_JOB_TIMEOUT)` })
        }
        yield* Effect.raceFirst(Effect.sleep(Math.min(delay, deadline - now)), deps.state.onStop)
        const r = yield* Effect.either(gateway.call(lane, client.bulkJob(job)))
        if (r._tag === "Right") {
          yield* backoff.reset
          polls++
          if (r.right.status !== "Running") {
            // Done at the first poll: it may have ended well before, so try a little earlier next time.
            lastJobMs = Math.max(100, polls === 1 ? lastJobMs * 0.95 : (yield* Clock.currentTimeMillis) - started)
            return r.right
          }
          // Missed: it should end soon, so look again soon, then less and less often.
          delay = polls === 1 ? Math.max(100, lastJobMs / 4) : Math.min(Duration.toMillis(MAX_POLL), delay * 1.5)
          continue
        }
        if (r.left._tag === "CallStopped") return yield* r.left
        if (r.left._tag !== "RateLimited") yield* Effect.raceFirst(Effect.ignore(backoff.next(r.left)), deps.state.onStop)
      }
    })

  const rejections = (job: number, errorFile: string | undefined) =>
    errorFile === undefined
      ? Effect.succeed([])
      : gateway.retrying(lane, client.bulkRejections(errorFile)).pipe(
        Effect.catchTag("RetriesExhausted", (e) => new JobFallback({ reason: `bulk job ${job} ended, but its error file could not be read: ${e.last}` }))
      )

  /** One job's life: its ID and the contacts it refused (by lowercase email), or one verdict for all. */
  const runJob = (batch: Batch): Effect.Effect<Ended | Verdict> =>
    Effect.gen(function*() {
      const id = yield* post(batch.action, batch.bodies!)
      // Sent: while the job runs, its contacts are only their emails.
      batch.bodies = undefined
      yield* Effect.logDebug("bulk job started").pipe(Effect.annotateLogs({ job: id, contacts: batch.emails.length, action: batch.action }))
      const fence = fences.open(id, batch.emails)
      const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(config.bulkJobTimeout)
      const end = yield* poll(id, deadline).pipe(
        // Not attempted, though the job may still land: a rerun sends the same updates again.
        Effect.catchTag("CallStopped", (e) =>
          new CallStopped({ reason: `${e.reason} (bulk job ${id}, still running, may land meanwhile)`, ...(e.error === undefined ? {} : { error: e.error }) })),
        // Its end not seen (the deadline, a stop, an interruption): it may still land.
        Effect.onExit((exit) => exit._tag === "Success" ? fences.close(fence) : deps.watch(fence))
      )
      if (end.status !== "Completed") {
        return { _tag: "Fallback", reason: `bulk job ${id} ended ${end.detail}${end.error === "" ? "" : ` (${end.error})`}` } as const
      }
      const refused = yield* rejections(id, end.errorFile)
      const rejected = new Map<string, BulkRejection>()
      for (const r of refused) rejected.set(r.email.toLowerCase(), r)
      return { _tag: "Ended", job: id, rejected } as const
    }).pipe(
      Effect.catchTags({
        JobFallback: (e) => Effect.succeed<Verdict>({ _tag: "Fallback", reason: e.reason }),
        CallStopped: (e) => Effect.succeed<Verdict>({ _tag: "Stopped", reason: e.reason, ...(e.error === undefined ? {} : { error: e.error }) })
      })
    )

  const delivered = (p: Send, job: number): Outcome => ({
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

  /** One by one, in order per contact, contacts side by side; a fallback's reason kept on its lines. */
  const oneByOne = (
    sends: ReadonlyArray<Send | undefined>,
    groups: ReadonlyArray<readonly [Group, string | undefined]>,
    into: Array<Outcome | undefined>
  ) =>
    Effect.forEach(groups, ([group, reason]) =>
      Effect.forEach(indices(group), (i) =>
        Effect.map(deps.sendOne(sends[i]!), (o) => {
          into[i] = reason === undefined || o.outcome !== "dead-lettered" ? o : { ...o, reason: `${reason}; then one by one: ${o.reason}` }
        }), { discard: true }), { concurrency: config.concurrency, discard: true })

  /**
   * The outcome of each of the window's events to send, in their order. `sends` is read for the
   * jobs' bodies and let go: while the jobs run, a contact is its email and its events' places.
   * `again` gives the same updates back once the jobs ended, for the outcomes and any fallback.
   */
  const window = (sends: ReadonlyArray<Send>, again: () => ReadonlyArray<Send>): Effect.Effect<ReadonlyArray<Outcome>> =>
    settle(planWindow(sends, config.bulkSize), again)

  const settle = (plan: Plan, again: () => ReadonlyArray<Send>): Effect.Effect<ReadonlyArray<Outcome>> =>
    Effect.gen(function*() {
      const out: Array<Outcome | undefined> = new Array(plan.size)
      const { batches } = plan
      const [ends] = yield* Effect.all([
        Effect.forEach(batches, runJob, { concurrency: "unbounded" }),
        oneByOne(plan.replays, plan.single, out)
      ], { concurrency: 2 })
      const sends = again()
      const fallback: Array<readonly [Group, string]> = []
      for (let b = 0; b < batches.length; b++) {
        const { emails, groups } = batches[b]!
        const end = ends[b]!
        // A job not read to its end: one verdict for all its contacts.
        if (end._tag === "Fallback") {
          for (const group of groups) fallback.push([group, end.reason])
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
          const rejection = end.rejected.get(emails[c]!.toLowerCase())
          if (rejection === undefined) {
            for (const i of indices(group)) {
              const p = sends[i]!
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
      yield* oneByOne(sends, fallback, out)
      return out as ReadonlyArray<Outcome>
    })

  return { window }
}

/** One job of a window: its contacts' bodies until they are sent, then their emails alone. */
interface Batch {
  readonly action: Action
  bodies: ReadonlyArray<Send["body"]> | undefined
  readonly emails: ReadonlyArray<string>
  /** Each contact's events: their places in the window. */
  readonly groups: ReadonlyArray<Group>
}

interface Plan {
  readonly size: number
  readonly batches: ReadonlyArray<Batch>
  /** Contacts sent one by one (a replay is guarded per event), and their events, the only ones kept. */
  readonly single: ReadonlyArray<readonly [Group, undefined]>
  readonly replays: ReadonlyArray<Send | undefined>
}

/** A window's contacts, each folded into one update, in jobs of at most `bulkSize` per action. */
const planWindow = (sends: ReadonlyArray<Send>, bulkSize: number): Plan => {
  const byContact = new Map<string, Group>()
  for (let i = 0; i < sends.length; i++) {
    const email = sends[i]!.email
    const g = byContact.get(email)
    if (g === undefined) byContact.set(email, i)
    else if (typeof g === "number") byContact.set(email, [g, i])
    else g.push(i)
  }
  const single: Array<readonly [Group, undefined]> = []
  const replays: Array<Send | undefined> = []
  const jobs = new Map<Action, { readonly bodies: Array<Send["body"]>; readonly groups: Array<Group> }>()
  for (const g of byContact.values()) {
    // Replays are guarded per event (ReplayGuard reads Mailjet first): their contacts go one by one.
    if (indices(g).some((i) => sends[i]!.replay !== undefined)) {
      single.push([g, undefined])
      for (const i of indices(g)) replays[i] = sends[i]
      continue
    }
    const body = typeof g === "number" ? sends[g]!.body : foldUpdates(g.map((i) => sends[i]!.body))
    let job = jobs.get(body.Action)
    if (job === undefined) jobs.set(body.Action, job = { bodies: [], groups: [] })
    job.bodies.push(body)
    job.groups.push(g)
  }
  const batches: Array<Batch> = []
  for (const [action, { bodies, groups }] of jobs) {
    for (let i = 0; i < bodies.length; i += bulkSize) {
      const part = bodies.slice(i, i + bulkSize)
      batches.push({ action, bodies: part, emails: part.map((b) => b.Email), groups: groups.slice(i, i + bulkSize) })
    }
  }
  return { size: sends.length, batches, single, replays }
}
