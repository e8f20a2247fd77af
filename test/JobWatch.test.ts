/**
 * The watcher of a bulk job whose end was not seen (Bulk.ts `watchJob`), against the simulator over
 * real sockets, in virtual time: a job Mailjet does not know (404) can never land, so its fence is
 * released at the first poll; a job still running keeps its contacts fenced.
 */
import { expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Option, TestClock } from "effect"
import { watchJob } from "../src/internal/bulkJob.js"
import { defaults } from "../src/Delivery/DeliveryConfig.js"
import { makeFences } from "../src/Delivery/Fences.js"
import { Pacer } from "../src/Mailjet/Pacer.js"
import { MailjetClient } from "../src/Mailjet/MailjetClient.js"
import { MailjetGateway } from "../src/Mailjet/MailjetGateway.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { capturedLogs, captureLogs, clientLayer, simulatorOptions } from "./support/layers.js"

/** Lets real I/O happen between virtual steps of `step`, until `done` or `steps` run out. */
const stepUntil = (done: Effect.Effect<boolean>, step: Duration.DurationInput, steps: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < steps && !(yield* done); i++) {
      yield* Effect.promise(() => new Promise<void>((r) => setTimeout(r, 2)))
      yield* TestClock.adjust(step)
    }
  })

it.effect("law: a job Mailjet answers 404 for is ended at the watcher's first poll, its fence released with a log naming it; a job still running stays fenced", () =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    yield* Effect.gen(function*() {
      const client = yield* MailjetClient
      const pacer = yield* Pacer.make(1000)
      const gateway = yield* Effect.provideService(MailjetGateway.make, Pacer, pacer)
      // Polls every 10 s at most: a quarter of 2 minutes would be 30 s.
      const config = { ...defaults, bulkJobTimeout: Duration.minutes(2) }
      // A job stuck in Importing for ever: Mailjet knows it, and it may still land.
      yield* sim.setFaults({ jobStuckRate: 1 })
      const running = yield* client.manageManyContacts("addforce", [{ Email: "kept@example.com" }])
      const unknown = running + 1_000_000
      const fences = makeFences()
      const forged = Option.getOrThrow(fences.learn(unknown, ["freed@example.com"]))
      const real = Option.getOrThrow(fences.learn(running, ["kept@example.com"]))
      capturedLogs.length = 0
      const watchers = yield* Effect.forkAll([forged, real].map(watchJob({ gateway, config, fences })))
      const started = yield* TestClock.currentTimeMillis
      yield* stepUntil(Deferred.isDone(forged.ended), "1 second", 200)
      expect(yield* Deferred.isDone(forged.ended)).toBe(true)
      // One poll interval, not MAILJET_BULK_JOB_TIMEOUT.
      expect((yield* TestClock.currentTimeMillis) - started).toBeLessThanOrEqual(11_000)
      expect(fences.of(["freed@example.com"])).toEqual([])
      expect(capturedLogs.join("\n")).toMatch(new RegExp(`bulk job ${unknown} is unknown to Mailjet \\(HTTP 404: Object not found\\), so it can never land`))
      // The running job: polled again and again over ten minutes, still fenced.
      yield* stepUntil(Effect.succeed(false), "10 seconds", 60)
      const polls = (yield* sim.requests).filter((r) => r.method === "GET" && r.path.endsWith(`/managemanycontacts/${running}`))
      expect(polls.length).toBeGreaterThan(10)
      expect(yield* Deferred.isDone(real.ended)).toBe(false)
      expect(fences.of(["kept@example.com"])).toEqual([real])
      yield* Fiber.interrupt(watchers)
    }).pipe(Effect.provide(clientLayer(sim.url)), Effect.scoped)
  }).pipe(Effect.provide(Simulator.layer(simulatorOptions())), Effect.provide(captureLogs)))
