/**
 * How many bulk windows are in flight: as many as memory and the call budget carry, not a fixed
 * count. A window holds its events (packed, WindowPack) and one entry per contact while its jobs
 * run; its jobs cost calls (a POST and its polls) over the window's life. Long jobs need many
 * windows in flight for the same rate (events/s ≈ events in flight ÷ a window's life), and cost no
 * more calls a second for it: so the bound follows the window's life, measured, not a constant.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as V8 from "node:v8"

/** What a window holds while in flight. */
export interface Load {
  readonly events: number
  readonly jobs: number
}

export interface Limits {
  /** Events held by the windows in flight: what memory carries. */
  readonly events: number
  /** Jobs in flight: what the call budget carries over a window's life. */
  readonly jobs: number
}

/**
 * Whether a window may start now. Nothing in flight: always (a window larger than the limits
 * still goes, alone), so the run always moves on.
 */
export const fits = (held: Load, load: Load, limits: Limits): boolean =>
  held.events === 0 ||
  (held.events + load.events <= limits.events && held.jobs + load.jobs <= limits.jobs)

/**
 * What a held event may cost on V8's heap with its window's pack in memory: 500 B, what a heap
 * snapshot showed before a window was one ticket (about 150 B later, with its item and email).
 */
export const HELD_EVENT_BYTES = 500
/**
 * What it costs with the pack in its file (WindowPack `spill`, the usual case) and its item a line
 * number: its place in its job and its share of the window's bookkeeping, about 130 B of heap by
 * the heap's growth over a 400,000-event backfill with 30 s jobs and 190,000 events in flight
 * (2026-12-06). Counted at 150: MAX_HELD_EVENTS binds first in the bin.
 */
export const SPILLED_EVENT_BYTES = 150
/**
 * The share of V8's heap limit the windows in flight may hold. Half: in the bin's 128 MB more than
 * MAX_HELD_EVENTS with their packs in their files, which long jobs need (events/s ≈ events in
 * flight ÷ a window's life).
 */
const HEAP_SHARE = 0.5
/** Calls a job costs: its POST, about one poll at its expected end, now and then a second or an error file. */
export const CALLS_PER_JOB = 2.5
/** The share of the call budget jobs may plan for: the rest is for retries, 429s' back-off, one-by-one fallbacks. */
const BUDGET_SHARE = 0.8
/**
 * Jobs in flight whatever the budget says: four windows of three actions, what short jobs had
 * before (a 0 s job's window lives about a second, and the budget alone would allow three jobs).
 */
const MIN_JOBS = 12

/**
 * Events in flight at most, whatever the heap: what keeps a backfill's peak RSS within 150 MB in
 * the bin. With each window's pack in its file and its items as line numbers, RSS grows by about
 * 200 B a held event, V8's own overhead included (330 B before, 500 B before that): measured with
 * 30 s jobs, 2026-12-06, 1,000,000 events with up to 192,000 in flight peaked at 149 MB (6 MB
 * windows, 200,000 at most), 140 MB with 172,000 (3 MB windows, bound by the call budget's jobs);
 * 190,000 leaves a window's room (BENCHMARKS.md, "Long jobs", fourth session). Without the bin's flags
 * (`node dist/bin.js`, a host's process) V8's own limit is gigabytes, and the windows would hold
 * as much as the budget allows. Long jobs are what it costs: events/s ≈ this ÷ a window's life.
 */
export const MAX_HELD_EVENTS = 190_000

/**
 * Events memory carries in flight: a share of the heap's limit (the bin's 128 MB, or V8's default)
 * at `bytes` a held event (HELD_EVENT_BYTES, or SPILLED_EVENT_BYTES with the packs in their files).
 */
export const eventsForHeap = (heapLimitBytes: number = V8.getHeapStatistics().heap_size_limit, bytes = HELD_EVENT_BYTES): number =>
  Math.max(1, Math.min(MAX_HELD_EVENTS, Math.floor((heapLimitBytes * HEAP_SHARE) / bytes)))

/**
 * Jobs the budget carries: each costs CALLS_PER_JOB calls over a window's life, so `maxRps` calls a
 * second carry maxRps × life ÷ CALLS_PER_JOB jobs at once (a share of them).
 */
export const jobsForBudget = (maxRps: number, windowLifeMs: number): number =>
  Math.max(MIN_JOBS, Math.floor((BUDGET_SHARE * maxRps * (windowLifeMs / 1000)) / CALLS_PER_JOB))

/** How long a window lives from its start to its end: the last one's, or longer if the oldest is already older. */
export class WindowLife {
  #last = 0
  readonly #started = new Map<number, number>()
  #next = 0
  start(now: number): number {
    const id = this.#next++
    this.#started.set(id, now)
    return id
  }
  end(id: number, now: number): void {
    const t = this.#started.get(id)
    if (t === undefined) return
    this.#started.delete(id)
    this.#last = now - t
  }
  /** A map keeps insertion order: its first entry is the oldest window in flight. */
  estimate(now: number): number {
    const oldest = this.#started.values().next()
    return Math.max(this.#last, oldest.done === true ? 0 : now - oldest.value)
  }
}

/**
 * The gate windows pass through, in input order (from the window path's sequential stage). `admit`
 * waits until the window fits, re-checking as windows end and once a second (the limits grow as
 * the oldest window ages); `leave` gives its load back.
 */
export const makeGate = (limits: (now: number) => Limits) => {
  const held = { events: 0, jobs: 0 }
  const life = new WindowLife()
  let changed = Deferred.unsafeMake<void>(FiberId.none)
  const admit = (load: Load): Effect.Effect<number> =>
    Effect.gen(function*() {
      while (!fits(held, load, limits(yield* Clock.currentTimeMillis))) {
        yield* Effect.raceFirst(Deferred.await(changed), Effect.sleep(1000))
      }
      held.events += load.events
      held.jobs += load.jobs
      return life.start(yield* Clock.currentTimeMillis)
    })
  const leave = (id: number, load: Load): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      held.events -= load.events
      held.jobs -= load.jobs
      life.end(id, now)
      const d = changed
      changed = Deferred.unsafeMake<void>(FiberId.none)
      return Deferred.succeed(d, undefined)
    })
  return { admit, leave, held: () => ({ ...held }), life: (now: number) => life.estimate(now) }
}
