/**
 * Bulk, part two: a job. POST it, poll it to its end (or its deadline), read its error file; every
 * call through the gateway. A job whose end was not seen (its deadline, a stop) may still land: its
 * contacts stay fenced (order.ts) and a watcher polls it, in the background, to its end.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { DeliverySettings } from "../Delivery/DeliveryConfig.js"
import type { Fence, Fences } from "../Delivery/Fences.js"
import * as Metrics from "../Delivery/Metrics.js"
import type { RunState } from "../Delivery/RunState.js"
import type { BulkRejection } from "../Mailjet/MailjetClient.js"
import { CallStopped, type Lane, type MailjetGateway, transientRetries } from "../Mailjet/MailjetGateway.js"
import type { Action } from "../Preset/Preset.js"
import type { Batch } from "./bulkPlan.js"

/** The first job's first poll; later ones wait about as long as the last job took. Polls slow down to MAX_POLL. */
const FIRST_POLL = Duration.seconds(1)
const MAX_POLL = Duration.seconds(10)
/**
 * A job that ended at its first poll moves the next expected end earlier, by this share at first and
 * twice as much after each such job in a row (at most EARLIER_MOST): an end learnt late (the first
 * jobs, polled less and less often before any end was seen, were seen 6 to 10 s after their 30 s)
 * is unlearnt in a few jobs, not thirty. A missed job is asked again after MISS_AGAIN of its expected
 * time (100 ms at least): with 2% and a tenth, about every third 30 s job missed and held its
 * window 3 s past its end.
 */
const EARLIER_FIRST = 0.01
const EARLIER_MOST = 0.16
const MISS_AGAIN = 0.01

/** A job read to its end: every contact not refused was accepted. */
export interface Ended {
  readonly _tag: "Ended"
  readonly job: number
  readonly rejected: ReadonlyMap<string, BulkRejection>
}

/** How a whole job went when it was not read to its end. */
export type Verdict =
  /**
   * The job did not run to a readable end: its events go one by one. `landed`, for a job posted
   * but not seen to end by its deadline (it may land later): the contacts it refused once it is seen
   * to complete, or undefined. An event whose one-by-one send failed may have landed through it.
   */
  | { readonly _tag: "Fallback"; readonly reason: string; readonly landed?: Effect.Effect<Landed | undefined> }
  | { readonly _tag: "Stopped"; readonly reason: string; readonly error?: string }

/** A job given up at its deadline, seen to complete after all: the contacts it refused, by lowercase email. */
export interface Landed {
  readonly job: number
  readonly refused: ReadonlySet<string>
}

/** A job that did not run to a readable end: its events go one by one, this said on them. */
export class JobFallback extends Schema.TaggedError<JobFallback>()("JobFallback", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

/** What a run's jobs need: its calls (gateway, lane), its stop, the fences, and where watchers live. */
export interface JobContext {
  readonly gateway: typeof MailjetGateway.Service
  readonly lane: Lane
  readonly config: DeliverySettings
  readonly state: RunState
  readonly fences: Fences
  /** The engine's scope: a job's watcher outlives the run that started it. */
  readonly scope: Scope.Scope
}

/** How long a poll waits at most: a short deadline (a test's) is polled more often. */
const slowestPoll = (config: DeliverySettings) => Math.min(Duration.toMillis(MAX_POLL), Duration.toMillis(config.bulkJobTimeout) / 4)

/**
 * A job whose end was not seen (this process's, or another's: Fences.learn): polled, outside any
 * run, until it ends, then its contacts are free. Never given up: a contact fenced for ever is held
 * back, not overwritten. Stops as well when another process saw the job end (Fences.forget), and
 * when Mailjet answers that it has no such job (404): one it does not know can never land.
 */
export const watchJob = (deps: Pick<JobContext, "gateway" | "config" | "fences">) => (fence: Fence) =>
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

/** Watches a job whose end was not seen in the background, for as long as the engine lives. */
export const watchInBackground = (ctx: Pick<JobContext, "gateway" | "config" | "fences" | "scope">) => (fence: Fence) =>
  // Interruptible, though forked from a finalizer: the engine's end must be able to stop it.
  Effect.asVoid(Effect.forkIn(Effect.interruptible(watchJob(ctx)(fence)), ctx.scope))

/** A run's jobs: `runJob` takes one from its POST to its end. */
export const makeJobs = (ctx: JobContext) => {
  const { config, fences, gateway, lane } = ctx
  const watch = watchInBackground(ctx)
  const client = gateway.client
  /** How long the last job took: the next job's first poll waits about that long, so most jobs take one poll. */
  let lastJobMs = Duration.toMillis(FIRST_POLL)
  let earlier = EARLIER_FIRST
  let seenEnd = false
  /** The last job's time measured between a miss and its end (0 before any). */
  let measured = 0

  const post = (action: Action, contacts: Uint8Array) =>
    gateway.retrying(lane, client.manageManyContacts(action, contacts)).pipe(
      Effect.catchTags({
        BulkRefused: (e) => new JobFallback({ reason: `the bulk call failed (${e.message})` }),
        RetriesExhausted: (e) => new JobFallback({ reason: `the bulk call failed (${e.message})` })
      })
    )

  // The first poll waits for the job's expected end up to a quarter of its deadline, not MAX_POLL:
  // capped at 10 s, a 30 s job took five polls (10, 12.5, 16, 22 and 30 s), and with the hundred
  // jobs in flight that 30 s jobs need, their polls alone were more than the call budget.
  const firstPollAtMost = Duration.toMillis(config.bulkJobTimeout) / 4
  // Polls are bounded by the job's deadline, not by attempts: the same schedule, without an end.
  const pollRetries = transientRetries({ base: config.retryBase, max: config.retryMax, attempts: Infinity })

  /**
   * Jobs are polled oldest first: one posted after a job still running has seldom ended before it,
   * so with many jobs in flight only the oldest spends polls, each at its expected end.
   */
  let previousTurn: Deferred.Deferred<void> | undefined

  /**
   * Polls until the job ends or its deadline passes, once the job posted before it was asked about
   * (before any end was seen: seen to end or to run late). `turn` lets the next job poll: a job that runs late must not hold the later
   * ones' polls back until their deadlines, so they are given up unseen although they have ended.
   */
  const poll = (job: number, deadline: number, posted: number, previous: Deferred.Deferred<void> | undefined, turn: Deferred.Deferred<void>) =>
    Effect.gen(function*() {
      if (previous !== undefined) yield* Effect.raceFirst(Deferred.await(previous), ctx.state.onStop)
      let polls = 0
      // At its expected end: how long the last job took, from its POST (which may be past already).
      let delay = Math.max(0, posted + Math.min(lastJobMs, firstPollAtMost) - (yield* Clock.currentTimeMillis))
      // A first poll made late (its turn came after its expected end) says nothing of how early it ended.
      const onTime = delay > 0
      let missed = 0
      let missedAt = 0
      // Asked at least once before it is given up: behind a slow earlier job, its deadline may have
      // passed while it waited its turn, and a job never asked about may well have ended (given up
      // unasked, its events went one by one and were dead-lettered while the job had landed them).
      let asked = false
      const backoff = yield* Schedule.driver(pollRetries)
      while (true) {
        const now = yield* Clock.currentTimeMillis
        if (now >= deadline && asked) {
          return yield* new JobFallback({ reason: `bulk job ${job} did not end within ${Duration.format(config.bulkJobTimeout)} (MAILJET_BULK_JOB_TIMEOUT)` })
        }
        yield* Effect.raceFirst(Effect.sleep(Math.max(0, Math.min(delay, deadline - now))), ctx.state.onStop)
        // Once an end was seen, the next job may poll as soon as this one is asked, not answered:
        // its expected end is later anyway, and after a burst of ends (a 30 s run's first
        // windows) polls one round trip after another held the jobs seen ended back by up to 10 s.
        // Before, it waits for the answer: a miss teaches it how long jobs take at least.
        if (!asked && seenEnd) yield* Deferred.succeed(turn, undefined)
        const r = yield* Effect.either(gateway.call(lane, client.bulkJob(job)))
        asked = true
        if (r._tag === "Right") {
          yield* backoff.reset
          polls++
          if (r.right.status !== "Running") {
            // Done at its first poll, made on time: it may have ended before, so try earlier next
            // time (a little at first: a miss costs a poll, and its window the re-poll's wait).
            // Done after a miss: it ended between the two polls.
            const now = yield* Clock.currentTimeMillis
            seenEnd = true
            if (polls > 1) {
              lastJobMs = measured = Math.max(100, (missedAt + now) / 2 - posted)
              earlier = EARLIER_FIRST
            } else if (onTime) {
              // Not far below the last end measured between two polls: the jobs of a burst of
              // windows all end at their first poll, and each moving it earlier took it to half.
              measured *= 0.99
              lastJobMs = Math.max(100, lastJobMs * (1 - earlier), measured * 0.97)
              earlier = Math.min(EARLIER_MOST, earlier * 2)
            }
            return r.right
          }
          // Missed: it should end soon, so look again soon, then less and less often; the next
          // job need not wait for it any more, but jobs take at least this long: the first ones
          // (before any end was seen, expected after 1 s) would otherwise all poll every few
          // seconds until the first of them ended.
          missedAt = yield* Clock.currentTimeMillis
          lastJobMs = Math.max(lastJobMs, missedAt - posted)
          yield* Deferred.succeed(turn, undefined)
          // Soon: a window waits the re-poll's delay past its job's end, and so do the lines of every
          // later window (a tenth of a 30 s job, 3 s, was a tenth of a window's life): a poll more
          // costs a tenth of a second of the budget.
          delay = missed = missed === 0 ? Math.max(100, lastJobMs * MISS_AGAIN) : Math.min(Duration.toMillis(MAX_POLL), missed * 1.5)
          continue
        }
        if (r.left._tag === "CallStopped") return yield* r.left
        if (r.left._tag !== "RateLimited") yield* Effect.raceFirst(Effect.ignore(backoff.next(r.left)), ctx.state.onStop)
      }
    })

  const rejections = (job: number, errorFile: string | undefined) =>
    errorFile === undefined
      ? Effect.succeed([])
      : gateway.retrying(lane, client.bulkRejections(errorFile)).pipe(
        Effect.catchTag("RetriesExhausted", (e) => new JobFallback({ reason: `bulk job ${job} ended, but its error file could not be read: ${e.last}` }))
      )

  /**
   * Whether a job given up at its deadline landed after all: once its watcher saw it end (waited for
   * as long as a fence's patience, or until the run stops), asked again, then its refused contacts read.
   */
  const landed = (job: number, fence: Fence) =>
    Effect.cached(Effect.gen(function*() {
      const ended = yield* Effect.raceFirst(
        Effect.as(Deferred.await(fence.ended), true),
        Effect.as(Effect.raceFirst(Effect.sleep(config.bulkJobTimeout), ctx.state.onStop), false)
      )
      if (!ended) return undefined as Landed | undefined
      const end = yield* gateway.retrying(lane, client.bulkJob(job))
      if (end.status !== "Completed") return undefined
      const refused = yield* rejections(job, end.errorFile)
      return { job, refused: new Set(refused.map((r) => r.email.toLowerCase())) }
    }).pipe(Effect.orElseSucceed((): Landed | undefined => undefined)))

  /**
   * One job's life: its ID and the contacts it refused (by lowercase email), or one verdict for all.
   * `emails` reads its contacts' emails back (from the window's pack) for whoever asks: a fence on
   * a job whose end is not seen, a listener.
   */
  const runJob: (batch: Batch, emails: () => ReadonlyArray<string>, onPosted: () => void) => Effect.Effect<Ended | Verdict> = Effect.fn("Bulk.job")(
    function*(batch: Batch, emails: () => ReadonlyArray<string>, onPosted: () => void) {
      // Sent (or not, then its contacts go one by one from the window's pack): while the job
      // runs, its contacts are only their places in the window.
      const id = yield* Effect.ensuring(post(batch.action, batch.contacts!), Effect.sync(() => {
        batch.contacts = undefined
        onPosted()
      }))
      yield* Effect.logDebug("bulk job started").pipe(Effect.annotateLogs({ job: id, contacts: batch.groups.length, action: batch.action }))
      // Its contacts are held by their window until the job's end: fenced only if it is not seen.
      const fence = fences.openHeld(id, emails)
      const posted = yield* Clock.currentTimeMillis
      const deadline = posted + Duration.toMillis(config.bulkJobTimeout)
      const previous = previousTurn
      const turn = previousTurn = Deferred.unsafeMake<void>(FiberId.none)
      const end = yield* poll(id, deadline, posted, previous, turn).pipe(
        Effect.ensuring(Deferred.succeed(turn, undefined)),
        // Not attempted, though the job may still land: a rerun sends the same updates again.
        Effect.catchTag("CallStopped", (e) =>
          new CallStopped({ reason: `${e.reason} (bulk job ${id}, still running, may land meanwhile)`, ...(e.error === undefined ? {} : { error: e.error }) })),
        // Its end not seen (the deadline, a stop, an interruption): it may still land.
        Effect.onExit((exit) => exit._tag === "Success" ? fences.close(fence) : Effect.zipRight(Effect.sync(() => fences.hold(fence)), watch(fence))),
        Effect.catchTag("JobFallback", (e) => Effect.map(landed(id, fence), (landed) => ({ _tag: "Fallback", reason: e.reason, landed }) as const))
      )
      if ("_tag" in end) return end
      if (end.status !== "Completed") {
        return { _tag: "Fallback", reason: `bulk job ${id} ended ${end.detail}${end.error === "" ? "" : ` (${end.error})`}` } as const
      }
      const refused = yield* rejections(id, end.errorFile)
      const rejected = new Map<string, BulkRejection>()
      for (const r of refused) rejected.set(r.email.toLowerCase(), r)
      return { _tag: "Ended", job: id, rejected } as const
    },
    Effect.catchTags({
      JobFallback: (e) => Effect.succeed<Verdict>({ _tag: "Fallback", reason: e.reason }),
      CallStopped: (e) => Effect.succeed<Verdict>({ _tag: "Stopped", reason: e.reason, ...(e.error === undefined ? {} : { error: e.error }) })
    })
  )

  return { runJob }
}
