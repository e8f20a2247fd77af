/**
 * A request to stop gracefully (SIGINT, SIGTERM): stop reading, finish what is in flight within
 * a deadline, flush, exit. A second signal stops at once.
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

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
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            process.on("SIGINT", onSignal)
            process.on("SIGTERM", onSignal)
          }),
          () =>
            Effect.sync(() => {
              process.off("SIGINT", onSignal)
              process.off("SIGTERM", onSignal)
            })
        )
        return shutdown
      })
    )
}
