/**
 * The Mailjet simulator in a process of its own, over HTTPS, for the bench: no request log, and
 * counters (statuses, TLS connections, CPU) the bench reads over IPC. Started by scripts/bench.ts.
 *
 * As the stand-in (`standIn`), the throughput runs' server: plain `node:https` answers managecontact
 * with a fixed 201 (a reply of the simulator's shape), costing a few µs, so the client is what is
 * measured and the server is never the bottleneck; every other call (preflight's reads) goes to
 * the simulator behind it, so the clients still see a real account.
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
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
    recordRequests: false,
    ...(setup.seedContacts === undefined ? {} : { seedContacts: setup.seedContacts })
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

  const tls = { key: Fs.readFileSync(setup.keyPath), cert: Fs.readFileSync(setup.certPath) }
  const https = setup.standIn === true ? Http.createServer() : Https.createServer(tls)
  https.on("secureConnection", () => {
    connections++
  })
  const server = yield* NodeHttpServer.make(() => https, { port: 0, host: "127.0.0.1" })
  yield* server.serve(counted).pipe(HttpMiddleware.withTracerDisabledWhenEffect(() => true))
  if (server.address._tag !== "TcpAddress") return yield* Effect.dieMessage("not a TCP address")
  let port = server.address.port

  // The stand-in's distinct emails, for the bench's conservation check.
  let emails = new Set<string>()
  if (setup.standIn === true) {
    const behind = port
    const managecontact = `/v3/REST/contactslist/${setup.listId}/managecontact`
    const fixed = JSON.stringify({
      Count: 1,
      Data: [{ ContactID: 1, Email: "bench@example.com", Action: "addforce", Name: "", Properties: {} }],
      Total: 1
    })
    const front = Https.createServer(tls, (req, res) => {
      if (req.method === "POST" && req.url === managecontact) {
        let body = ""
        req.setEncoding("utf8")
        req.on("data", (d: string) => (body += d))
        req.on("end", () => {
          const email = /"Email":"([^"]*)"/.exec(body)?.[1]
          if (email !== undefined) emails.add(email)
          byStatus.set(201, (byStatus.get(201) ?? 0) + 1)
          const now = Date.now()
          if (firstOkAt === 0) firstOkAt = now
          lastOkAt = now
          res.writeHead(201, { "content-type": "application/json", "content-length": Buffer.byteLength(fixed) })
          res.end(fixed)
        })
        return
      }
      const proxied = Http.request({ host: "127.0.0.1", port: behind, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
      })
      proxied.on("error", () => res.destroy())
      req.pipe(proxied)
    })
    front.keepAliveTimeout = 60_000
    front.on("secureConnection", () => {
      connections++
    })
    yield* Effect.async<void>((resume) => {
      front.listen(0, "127.0.0.1", () => resume(Effect.void))
    })
    port = (front.address() as { port: number }).port
  }

  process.on("message", (m: ToSimulator) => {
    switch (m.type) {
      case "reset":
        Effect.runSync(service.reset)
        byStatus = new Map()
        connections = 0
        firstOkAt = 0
        lastOkAt = 0
        tooManyAt = []
        emails = new Set()
        cpuBase = process.cpuUsage()
        return send({ type: "reset-done" })
      case "stats": {
        const cpu = process.cpuUsage(cpuBase)
        const stats: SimulatorStats = {
          byStatus: Object.fromEntries(byStatus),
          connections,
          contacts: setup.standIn === true ? emails.size : Effect.runSync(service.contacts).length,
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
