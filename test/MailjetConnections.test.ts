/**
 * Sockets to Mailjet: `deliver` with 16 lanes keeps at most 16 + 4 connections open, counted by a TCP
 * proxy in front of the simulator. Unbounded, undici's pool opened about a second socket per lane:
 * it keeps a socket a loop turn after its reply, and the next event's request found them all busy.
 */
import * as Net from "node:net"
import { describe, expect, it } from "vitest"
import { runBin } from "./support/bin.js"
import { fileSimulator } from "./support/fileSimulator.js"
import { KEY, SECRET } from "./support/layers.js"

const { sim } = fileSimulator({ seed: 43 })

const LANES = 16
const EVENTS = 3_000

/** A proxy to `target` that counts the connections it accepted, and how many were open at once. */
const countingProxy = (target: URL) =>
  new Promise<{ readonly url: string; readonly counts: () => { accepted: number; most: number }; readonly close: () => Promise<void> }>(
    (resolve) => {
      let accepted = 0
      let open = 0
      let most = 0
      const sockets = new Set<Net.Socket>()
      const server = Net.createServer((client) => {
        accepted++
        most = Math.max(most, ++open)
        const upstream = Net.connect(Number(target.port), target.hostname)
        for (const s of [client, upstream]) {
          sockets.add(s)
          s.on("error", () => undefined)
          s.on("close", () => sockets.delete(s))
        }
        client.on("close", () => {
          open--
          upstream.destroy()
        })
        upstream.on("close", () => client.destroy())
        client.pipe(upstream).pipe(client)
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as Net.AddressInfo
        resolve({
          url: `http://127.0.0.1:${port}`,
          counts: () => ({ accepted, most }),
          close: () =>
            new Promise((done) => {
              for (const s of sockets) s.destroy()
              server.close(() => done())
            })
        })
      })
    }
  )

describe("connections to Mailjet", () => {
  it(`deliver at ${LANES} lanes: every event delivered over at most ${LANES} + 4 sockets`, async () => {
    const proxy = await countingProxy(new URL(sim().url))
    try {
      const events = Array.from({ length: EVENTS }, (_, i) =>
        JSON.stringify({
          type: "track",
          event: "Signed Up",
          messageId: `conn-${i}`,
          context: { traits: { email: `conn-${i}@example.com` }, consent: { marketing: true } }
        })).join("\n")
      const r = await runBin(["deliver", "--concurrency", String(LANES)], {
        MAILJET_API_KEY: KEY,
        MAILJET_SECRET_KEY: SECRET,
        MAILJET_LIST_ID: "1",
        MAILJET_BASE_URL: proxy.url,
        MAILJET_MAX_RPS: "100000",
        MAILJET_BULK: "off"
      }, `${events}\n`, 120_000)
      expect(r.code, r.stderr).toBe(0)
      const outcomes = r.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { outcome: string }).outcome)
      expect(outcomes).toHaveLength(EVENTS)
      expect(outcomes.every((o) => o === "delivered")).toBe(true)
      const { accepted, most } = proxy.counts()
      // Enough lanes were busy to tell the bound from none: more than half of them had a socket.
      expect(most).toBeGreaterThan(LANES / 2)
      expect(accepted).toBeLessThanOrEqual(LANES + 4)
    } finally {
      await proxy.close()
    }
  }, 180_000)
})
