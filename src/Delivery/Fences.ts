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
  readonly emails: ReadonlyArray<string>
  readonly ended: Deferred.Deferred<void>
}

export interface Fences {
  /** A job was accepted: its contacts wait for it until `close`. */
  readonly open: (job: number, emails: ReadonlyArray<string>) => Fence
  /** The job ended (Completed, Error or Abort): its contacts are free. */
  readonly close: (fence: Fence) => Effect.Effect<void>
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

export const makeFences = (): Fences => {
  const byEmail = new Map<string, Fence>()
  return {
    open: (job, emails) => {
      const fence: Fence = { job, emails, ended: Deferred.unsafeMake<void>(FiberId.none) }
      for (const e of emails) byEmail.set(e, fence)
      return fence
    },
    close: (fence) =>
      Effect.suspend(() => {
        for (const e of fence.emails) if (byEmail.get(e) === fence) byEmail.delete(e)
        return Deferred.succeed(fence.ended, undefined)
      }),
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

/** Why a run stops for a job that has not ended: said on every event it holds back. */
export const unfinishedJobDetail = (fence: Fence, patience: Duration.Duration) =>
  `bulk job ${fence.job} has not ended: the later updates of its ${fence.emails.length} contacts waited ${
    Duration.format(patience)
  } (MAILJET_BULK_JOB_TIMEOUT) for it, since the job would overwrite them; check it with GET managemanycontacts/${fence.job}`
