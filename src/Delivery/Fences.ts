/**
 * Contacts whose bulk job may still land. A job Mailjet has not finished can apply its update at
 * any later time, so nothing later of its contacts may be sent before it ends: the job would
 * overwrite it (re-subscribing someone who unsubscribed meanwhile, say). Kept for the life of the
 * Delivery service, across runs, so a `serve` worker's next run waits too.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"

export interface Fence {
  readonly job: number
  /** Another process's job (Fences.learn), not this one's. */
  readonly learnt: boolean
  readonly emails: ReadonlyArray<string>
  readonly ended: Deferred.Deferred<void>
}

/** Told of this process's own jobs, e.g. to share them with the other workers (see SuppressionTopic). */
export interface FenceListener {
  /** A job was accepted: until `ended`, it may land. */
  readonly opened: (fence: Fence) => void
  /** The job was seen to end, here (by its run or a watcher). */
  readonly ended: (fence: Fence) => void
}

export interface Fences {
  /** A job was accepted: its contacts wait for it until `close`. */
  readonly open: (job: number, emails: ReadonlyArray<string>) => Fence
  /**
   * A job was accepted while its contacts are held back by other means (their bulk window's ticket,
   * order.ts): told like `open`, but its contacts wait for it only from `hold` on. A fence each
   * contact for every job in flight was the largest part of a long job's window (a map entry each:
   * 15 MB at 180,000 contacts in flight), and the window already holds them while its jobs run.
   * Its emails may be given as a function: read once someone asks for them (`hold`, a listener),
   * so a job whose end is seen and that nobody shares never holds them.
   */
  readonly openHeld: (job: number, emails: ReadonlyArray<string> | (() => ReadonlyArray<string>)) => Fence
  /** The window lets go of a job opened held whose end was not seen: its contacts wait for it from now on until `close`. */
  readonly hold: (fence: Fence) => void
  /** The job ended (Completed, Error or Abort): its contacts are free. */
  readonly close: (fence: Fence) => Effect.Effect<void>
  /**
   * Another process's job that may still land (these of its contacts): fenced here too. The fence,
   * when the job was not known yet: the caller watches it to its end.
   */
  readonly learn: (job: number, emails: ReadonlyArray<string>) => Option.Option<Fence>
  /** Another process saw the job end. */
  readonly forget: (job: number) => Effect.Effect<void>
  /** Tells `listener` of this process's jobs from now on, until the function it returns is called. */
  readonly observe: (listener: FenceListener) => () => void
  /** The fences of these contacts; synchronous, and nothing to do while no job is open. */
  readonly of: (emails: Iterable<string>) => ReadonlyArray<Fence>
  /**
   * Waits for the fences to close, up to `patience`, or until `interrupt` completes; the job still
   * open then, if any. Its contacts' updates must not be sent.
   */
  readonly await: (
    fences: ReadonlyArray<Fence>,
    patience: Duration.Duration,
    interrupt: Effect.Effect<unknown>
  ) => Effect.Effect<Option.Option<Fence>>
}

/** A job's fence; its emails read when first asked for, when given as a function. */
class JobFence implements Fence {
  readonly ended = Deferred.unsafeMake<void>(FiberId.none)
  #emails: Array<string> | undefined
  #read: (() => ReadonlyArray<string>) | undefined
  constructor(readonly job: number, readonly learnt: boolean, emails: ReadonlyArray<string> | (() => ReadonlyArray<string>)) {
    if (typeof emails === "function") this.#read = emails
    else this.#emails = [...emails]
  }
  get emails(): Array<string> {
    if (this.#emails === undefined) {
      this.#emails = [...this.#read!()]
      this.#read = undefined
    }
    return this.#emails
  }
  /** Whether its emails were read: one never read was never held either. */
  get known(): boolean {
    return this.#emails !== undefined
  }
}

export const makeFences = (): Fences => {
  const byEmail = new Map<string, Fence>()
  const byJob = new Map<number, JobFence>()
  const listeners: Array<FenceListener> = []
  const fence = (job: number, emails: ReadonlyArray<string> | (() => ReadonlyArray<string>), learnt: boolean, held = true): JobFence => {
    const f = new JobFence(job, learnt, emails)
    byJob.set(job, f)
    if (held) for (const e of f.emails) byEmail.set(e, f)
    return f
  }
  const end = (f: Fence) =>
    Effect.suspend(() => {
      if (byJob.get(f.job) === f) byJob.delete(f.job)
      if (!(f instanceof JobFence) || f.known) for (const e of f.emails) if (byEmail.get(e) === f) byEmail.delete(e)
      return Deferred.succeed(f.ended, undefined)
    })
  return {
    open: (job, emails) => {
      const f = fence(job, emails, false)
      for (const l of listeners) l.opened(f)
      return f
    },
    openHeld: (job, emails) => {
      const f = fence(job, emails, false, false)
      for (const l of listeners) l.opened(f)
      return f
    },
    hold: (f) => {
      // Ended already (another process saw it end): nothing to wait for.
      if (byJob.get(f.job) !== f) return
      for (const e of f.emails) byEmail.set(e, f)
    },
    close: (f) =>
      Effect.flatMap(end(f), (first) =>
        Effect.sync(() => {
          if (first) for (const l of listeners) l.ended(f)
        })),
    learn: (job, emails) => {
      const known = byJob.get(job)
      const f = known ?? fence(job, [], true)
      const mine = f.emails
      // A contact already fenced waits for that job; a job shared in parts gathers its contacts.
      for (const e of emails) {
        if (byEmail.has(e)) continue
        mine.push(e)
        byEmail.set(e, f)
      }
      return known === undefined ? Option.some(f) : Option.none()
    },
    forget: (job) => Effect.suspend(() => {
      const known = byJob.get(job)
      return known === undefined ? Effect.void : Effect.asVoid(end(known))
    }),
    observe: (listener) => {
      listeners.push(listener)
      return () => {
        const i = listeners.indexOf(listener)
        if (i >= 0) listeners.splice(i, 1)
      }
    },
    of: (emails) => {
      if (byEmail.size === 0) return []
      const found = new Set<Fence>()
      for (const e of emails) {
        const f = byEmail.get(e)
        if (f !== undefined) found.add(f)
      }
      return [...found]
    },
    await: (fences, patience, interrupt) =>
      Effect.gen(function*() {
        for (const fence of fences) {
          if (yield* Deferred.isDone(fence.ended)) continue
          const closed = yield* Effect.raceFirst(
            Effect.as(Deferred.await(fence.ended), true),
            Effect.as(Effect.raceFirst(Effect.sleep(patience), interrupt), false)
          )
          if (!closed) return Option.some(fence)
        }
        return Option.none()
      })
  }
}

/** Why a run stops for a job that has not ended: said on every event it holds back, and by serve's pause. */
export const unfinishedJobDetail = (fence: Fence, patience: Duration.Duration) =>
  `waiting for bulk job ${fence.job}${fence.learnt ? " of another worker" : ""}, which has not ended: the later updates of its ${fence.emails.length} contacts waited ${
    Duration.format(patience)
  } (MAILJET_BULK_JOB_TIMEOUT) for it, since the job would overwrite them; check it with GET managemanycontacts/${fence.job}`
