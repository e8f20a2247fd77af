/**
 * serve's connection cap (WorkerHttp.limitConnections) on a real Node server and real sockets:
 * at the cap the oldest connection with no request in progress goes, never one being answered.
 */
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import * as Net from "node:net"
import { LIMITS, limitConnections, oldestIdle } from "../src/Kafka/WorkerHttp.js"

const servers: Array<Http.Server> = []
const sockets: Array<Net.Socket> = []
afterEach(() => {
  sockets.splice(0).forEach((s) => s.destroy())
  servers.splice(0).forEach((s) => {
    s.closeAllConnections()
    s.close()
  })
})

/** A server capped at `max`, whose `/slow` answers only when `release()` is called. */
const serve = async (max: number) => {
  const waiting: Array<() => void> = []
  const server = Http.createServer(LIMITS, (req, res) => {
    if (req.url === "/slow") waiting.push(() => res.end("slow"))
    else res.end("fast")
  })
  limitConnections(server, max)
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return { port: (server.address() as AddressInfo).port, release: () => waiting.splice(0).forEach((f) => f()) }
}

interface Client {
  readonly socket: Net.Socket
  readonly closed: () => boolean
  /** Everything the server wrote, so far. */
  readonly received: () => string
}

/** A connection that sends `first` once connected (nothing, half a header, a whole request). */
const connect = (port: number, first = "") =>
  new Promise<Client>((resolve) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    sockets.push(socket)
    let closed = false
    let received = ""
    socket.on("error", () => {})
    socket.on("data", (d: Buffer) => (received += d.toString()))
    socket.on("close", () => (closed = true))
    socket.once("connect", () => {
      if (first !== "") socket.write(first)
      // Past the server's accept and parse, on loopback.
      setTimeout(() => resolve({ socket, closed: () => closed, received: () => received }), 100)
    })
  })

const slow = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
const half = "GET /fast HTTP/1.1\r\nHost: x\r\nX-Slow: "

describe("the connection cap", () => {
  it("evicts the oldest idle connection for a newcomer, never one being answered; refuses when every one is", async () => {
    const server = await serve(3)
    const idle = await connect(server.port)
    const busy = await connect(server.port, slow)
    const halfSent = await connect(server.port, half)
    expect([idle, busy, halfSent].map((c) => c.closed())).toEqual([false, false, false])

    // At the cap: the oldest connection with no request in progress goes, not the older one being answered.
    const d = await connect(server.port, slow)
    expect([idle, busy, halfSent, d].map((c) => c.closed())).toEqual([true, false, false, false])
    const e = await connect(server.port, slow)
    expect([busy, halfSent, d, e].map((c) => c.closed())).toEqual([false, true, false, false])

    // Every slot has a request being answered: the newcomer is refused, and they are all answered.
    const refused = await connect(server.port, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
    expect(refused.closed()).toBe(true)
    expect(refused.received()).toBe("")
    server.release()
    await new Promise((r) => setTimeout(r, 100))
    for (const c of [busy, d, e]) expect(c.received()).toMatch(/^HTTP\/1\.1 200 OK[\s\S]*slow$/)

    // Answered, they are idle keep-alives: the oldest goes for the next newcomer.
    const g = await connect(server.port, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
    expect([busy, d, e, g].map((c) => c.closed())).toEqual([true, false, false, false])
    expect(g.received()).toMatch(/fast$/)
  })
})

describe("oldestIdle", () => {
  it.prop(
    "law: the connection chosen is the oldest with no request in progress, and none is when every one has one",
    { requests: Schema.Array(Schema.Int.pipe(Schema.between(0, 3))) },
    ({ requests }) => {
      const open = new Map(requests.map((n, i) => [i, n] as const))
      const chosen = oldestIdle(open)
      const first = requests.findIndex((n) => n === 0)
      expect(chosen).toBe(first === -1 ? undefined : first)
    }
  )
})
