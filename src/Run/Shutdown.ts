/**
 * A request to stop gracefully (SIGINT, SIGTERM, stdout closed by its reader): stop reading, finish what is in flight within
 * a deadline, flush, exit. A second signal stops at once.
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"

export class Shutdown extends Context.Tag("signal-mailjet/Shutdown")<Shutdown, {
  /** Completes when a shutdown is requested. */
  readonly requested: Effect.Effect<void>
  readonly request: Effect.Effect<void>
}>() {
  static readonly make = Effect.map(Deferred.make<void>(), (d) =>
    Shutdown.of({ requested: Deferred.await(d), request: Effect.asVoid(Deferred.succeed(d, undefined)) }))

  /** SIGINT and SIGTERM request a shutdown; a second one runs `force`. */
  static readonly layerSignals = (force: () => void) =>
    Layer.scoped(
      Shutdown,
      Effect.gen(function*() {
        const shutdown = yield* Shutdown.make
        let signals = 0
        const onSignal = () => {
          if (++signals > 1) return force()
          Effect.runFork(shutdown.request)
        }
        // The reader of the outcome lines went away (`| head`, a closed pipe): nobody can learn what
        // later events became, so stop as on SIGTERM rather than deliver unrecorded.
        const onStdoutGone = (e: NodeJS.ErrnoException) => {
          process.stderr.write(`signal-mailjet: stdout was closed by its reader (${e.code ?? e.message}): stopping; the summary counts every event, a rerun from the resume line is safe\n`)
          Effect.runFork(shutdown.request)
        }
        // npm (npx, npm start) does not pass a SIGTERM on to the process it started, and ends
        // without it: a worker left behind keeps its port and its place in the group. Under npm,
        // the parent's end is the stop request. Under anything else (a shell, nohup) it is not.
        const parent = process.ppid
        const orphaned = () => {
          if (process.ppid === parent) return
          clearInterval(watch)
          process.stderr.write(`signal-mailjet: its parent (npm, pid ${parent}) ended without passing the signal on: stopping\n`)
          Effect.runFork(shutdown.request)
        }
        let watch: ReturnType<typeof setInterval> | undefined
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            process.on("SIGINT", onSignal)
            process.on("SIGTERM", onSignal)
            process.stdout.on("error", onStdoutGone)
            if (process.env["npm_command"] !== undefined) watch = setInterval(orphaned, 250).unref()
          }),
          () =>
            Effect.sync(() => {
              process.off("SIGINT", onSignal)
              process.off("SIGTERM", onSignal)
              process.stdout.off("error", onStdoutGone)
              clearInterval(watch)
            })
        )
        return shutdown
      })
    )
}

/**
 * Retries that a shutdown request ends: each wait races the request, and once it came no try
 * follows, so the caller gets its last error at once instead of retrying on until SIGKILL.
 * `stopped()` says whether that is why the retries ended.
 */
export const retriesUntil = <Out, In, R>(requested: Effect.Effect<void>, self: Schedule.Schedule<Out, In, R>) => {
  let stopped = false
  const schedule = self.pipe(
    // The wait is taken here, racing the request; the retry itself then waits no more.
    Schedule.modifyDelayEffect((_, delay) =>
      Effect.as(
        Effect.raceFirst(
          Effect.sleep(delay),
          Effect.tap(requested, () => {
            stopped = true
          })
        ),
        Duration.zero
      )
    ),
    Schedule.check(() => !stopped)
  )
  return { schedule, stopped: (): boolean => stopped }
}

/**
 * Runs `self` in a scope whose closing may take at most `within`: a resource whose close does not
 * answer (a Kafka client whose broker is gone) must not keep a stopped process alive. Past it the
 * close goes on detached, with a warning, and the process ends with `self`'s own result.
 */
export const closedWithin = (within: Duration.DurationInput) =>
<A, E, R>(self: Effect.Effect<A, E, R | Scope.Scope>): Effect.Effect<A, E, Exclude<R, Scope.Scope>> =>
  Effect.flatMap(Scope.make(), (scope) =>
    Effect.flatMap(Effect.exit(Scope.extend(self, scope)), (exit) =>
      Scope.close(scope, exit).pipe(
        Effect.disconnect,
        Effect.timeoutOption(within),
        Effect.flatMap((closed) =>
          closed._tag === "Some"
            ? Effect.void
            : Effect.logWarning(`resources still closing after ${Duration.format(Duration.decode(within))}: exiting without them`)
        ),
        Effect.zipRight(exit)
      )))
