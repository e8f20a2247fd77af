/**
 * The Mailjet simulator in a process of its own, over HTTPS, for the bench: no request log, and
 * counters (statuses, TLS connections, CPU) the bench reads over IPC. Started by scripts/bench.ts.
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Https from "node:https"
import { DefaultPreset } from "../../src/Preset/Preset.js"
import * as Simulator from "../../src/Simulator/Simulator.js"
import type { FromSimulator, SimulatorSetup, SimulatorStats, ToSimulator } from "./protocol.js"

const setup = JSON.parse(process.env["BENCH_SIMULATOR"] ?? "{}") as SimulatorSetup
const send = (m: FromSimulator) => process.send?.(m)

const program = Effect.gen(function*() {
  const { app, service } = yield* Simulator.makeApp({
    apiKey: setup.apiKey,
    secretKey: setup.secretKey,
    lists: [{ id: setup.listId, name: "Bench" }],
    properties: Array.from(DefaultPreset.datatypes, ([name, datatype]) => ({ name, datatype })),
    faults: setup.faults,
    recordRequests: false
  })

  let byStatus = new Map<number, number>()
  let connections = 0
  let firstOkAt = 0
  let tooManyAt: Array<number> = []
  let lastOkAt = 0
  let cpuBase = process.cpuUsage()
  const counted = Effect.tap(app, (res) => {
    byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1)
    if (res.status === 429 && tooManyAt.length < 100) tooManyAt.push(Date.now())
    if (res.status === 201) {
      const now = Date.now()
      if (firstOkAt === 0) firstOkAt = now
      lastOkAt = now
    }
  })

  const https = Https.createServer({ key: Fs.readFileSync(setup.keyPath), cert: Fs.readFileSync(setup.certPath) })
  https.on("secureConnection", () => {
    connections++
  })
  const server = yield* NodeHttpServer.make(() => https, { port: 0, host: "127.0.0.1" })
  yield* server.serve(counted).pipe(HttpMiddleware.withTracerDisabledWhenEffect(() => true))
  if (server.address._tag !== "TcpAddress") return yield* Effect.dieMessage("not a TCP address")
  const port = server.address.port

  process.on("message", (m: ToSimulator) => {
    switch (m.type) {
      case "reset":
        Effect.runSync(service.reset)
        byStatus = new Map()
        connections = 0
        firstOkAt = 0
        lastOkAt = 0
        tooManyAt = []
        cpuBase = process.cpuUsage()
        return send({ type: "reset-done" })
      case "stats": {
        const cpu = process.cpuUsage(cpuBase)
        const stats: SimulatorStats = {
          byStatus: Object.fromEntries(byStatus),
          connections,
          contacts: Effect.runSync(service.contacts).length,
          firstOkAt,
          lastOkAt,
          tooManyAt,
          cpuMs: (cpu.user + cpu.system) / 1000
        }
        return send({ type: "stats", stats })
      }
      case "stop":
        return process.exit(0)
    }
  })
  // The bench gone means the run is over.
  process.on("disconnect", () => process.exit(0))
  send({ type: "ready", port })
  return yield* Effect.never
})

Effect.runFork(Effect.scoped(program)).addObserver((exit) => {
  if (exit._tag === "Failure") {
    process.stderr.write(`bench simulator failed: ${String(exit.cause)}\n`)
    process.exit(1)
  }
})
