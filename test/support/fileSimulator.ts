/** The simulator one test file shares, and the environment of a `serve` worker pointed at it. */
import { type Effect, ManagedRuntime } from "effect"
import { afterAll, beforeAll } from "vitest"
import * as Simulator from "../../src/Simulator/Simulator.js"
import { freePort } from "./kafka.js"
import { KEY, SECRET, simulatorOptions } from "./layers.js"

/**
 * One simulator for the whole file, started in beforeAll and disposed in afterAll, with
 * simulatorOptions' defaults (these credentials, list 1, the Default preset's properties) under `options`.
 */
export const fileSimulator = (options: Partial<Simulator.LayerOptions> = {}) => {
  const runtime = ManagedRuntime.make(Simulator.layer(simulatorOptions(options)))
  let service: Simulator.SimulatorService | undefined
  beforeAll(async () => {
    service = await runtime.runPromise(Simulator.Simulator)
  })
  afterAll(async () => {
    await runtime.dispose()
  })
  return {
    /** The running simulator (from beforeAll on). */
    sim: (): Simulator.SimulatorService => {
      if (service === undefined) throw new Error("fileSimulator: the simulator is not started yet (beforeAll)")
      return service
    },
    run: <A, E>(e: Effect.Effect<A, E>) => runtime.runPromise(e)
  }
}

/**
 * The environment of a `serve` worker for integration `id` against `sim`: these credentials, list 1,
 * a free PORT, and the defaults most worker tests use. `extra` overrides any of them; a key set to
 * undefined is left out of the environment, so the worker takes its own default.
 */
export const workerEnv = async (
  sim: { readonly url: string },
  id: string,
  extra: Readonly<Record<string, string | undefined>> = {}
): Promise<Record<string, string>> => {
  const env: Record<string, string | undefined> = {
    MAILJET_API_KEY: KEY,
    MAILJET_SECRET_KEY: SECRET,
    MAILJET_LIST_ID: "1",
    MAILJET_BASE_URL: sim.url,
    MAILJET_MAX_RPS: "2000",
    MAILJET_RETRY_BASE: "10 millis",
    SIGNAL_INTEGRATION_ID: id,
    KAFKA_COMMIT_INTERVAL: "200 millis",
    MAILJET_SHUTDOWN_TIMEOUT: "1 second",
    ...extra
  }
  if (!("PORT" in extra)) env["PORT"] = String(await freePort())
  return Object.fromEntries(Object.entries(env).filter((kv): kv is [string, string] => kv[1] !== undefined))
}
