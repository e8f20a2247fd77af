/**
 * One contender of the throughput comparison, in a process of its own (started by scripts/bench.ts
 * with NODE_EXTRA_CA_CERTS naming the simulator's certificate). It warms up on its own contacts,
 * says so, waits for "go" (the simulator is reset in between), then runs the measured events and
 * reports its time and CPU.
 *
 * - undici: a raw keep-alive loop posting managecontact bodies built beforehand (the ceiling);
 * - node-mailjet: Mailjet's SDK making the same calls with the same bodies; and again with the
 *   agent Node had by default before 19 (no keep-alive: a new TLS connection per call), for context;
 * - delivery: this project's path in process, `Delivery.run` over the file's lines;
 * - mapping: `prepare` alone (decode, consent, mapping, datatypes), no I/O.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { ConfigProvider, Effect, Layer, ManagedRuntime, Stream } from "effect"
import { createRequire } from "node:module"
import * as Fs from "node:fs"
import * as Https from "node:https"
import { Agent, request } from "undici"
import { Consent } from "../../src/Consent.js"
import { Delivery } from "../../src/Delivery/Delivery.js"
import { prepareLine } from "../../src/Delivery/Prepare.js"
import type { ManageContactBody } from "../../src/Mailjet/MailjetClient.js"
import { Mapping } from "../../src/Mapping.js"
import { readLines } from "../../src/Run/Ndjson.js"
import type { ContenderResult, ContenderSetup, FromContender, ToContender } from "./protocol.js"

const setup = JSON.parse(process.env["BENCH_CONTENDER"] ?? "{}") as ContenderSetup
const send = (m: FromContender, then?: () => void) => process.send?.(m, undefined, {}, then)

const readAll = (path: string): ReadonlyArray<string> => Fs.readFileSync(path, "utf8").split("\n").filter((l) => l !== "")

const mapping = Mapping.make()
const consent = Consent.make()

/** What the project would send for each line, through its own mapping: every contender sends exactly these. */
const bodies = (lines: ReadonlyArray<string>): Array<ManageContactBody> =>
  lines.map((text, i) => {
    const p = prepareOne(text, i + 1)
    if (p._tag !== "Send") throw new Error(`line ${i + 1} would not be sent`)
    return p.body
  })

const prepareOne = (text: string, line: number) =>
  prepareLine(text, line, consent.resolve, mapping, mapping.preset.datatypes)

/** `count` jobs over `concurrency` workers. */
const pool = async (count: number, concurrency: number, job: (i: number) => Promise<boolean>) => {
  let next = 0
  let ok = 0
  let failed = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      if (await job(i)) ok++
      else failed++
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return { ok, failed }
}

interface Runner {
  readonly warmUp: () => Promise<unknown>
  /** The measured part. */
  readonly run: () => Promise<{ readonly events: number; readonly ok: number; readonly failed: number }>
}

const path = `/v3/REST/contactslist/${setup.listId}/managecontact`
const authorization = "Basic " + Buffer.from(`${setup.apiKey}:${setup.secretKey}`).toString("base64")

const undiciRunner = (): Runner => {
  const dispatcher = new Agent()
  const headers = { authorization, "content-type": "application/json", accept: "application/json" }
  const post = async (body: string) => {
    const res = await request(setup.url + path, { dispatcher, method: "POST", headers, body })
    await res.body.text()
    return res.statusCode === 201
  }
  // Built before the clock starts: this contender measures the transport alone.
  const warm = bodies(readAll(setup.warmupPath)).map((b) => JSON.stringify(b))
  const measured = bodies(readAll(setup.eventsPath)).map((b) => JSON.stringify(b))
  return {
    warmUp: () => pool(warm.length, setup.concurrency, (i) => post(warm[i]!)),
    run: async () => ({ events: measured.length, ...(await pool(measured.length, setup.concurrency, (i) => post(measured[i]!))) })
  }
}

interface MailjetRequest {
  readonly request: (data: unknown) => Promise<{ readonly response: { readonly status: number } }>
}
interface MailjetClient {
  readonly post: (resource: string, config: { readonly version: "v3" }) => {
    readonly id: (id: number) => { readonly action: (name: string) => MailjetRequest }
  }
}
interface MailjetStatic {
  readonly apiConnect: (key: string, secret: string, params: { readonly config: { readonly host: string } }) => MailjetClient
}

const mailjetRunner = (keepAlive: boolean): Runner => {
  // Node 19+ keeps connections alive by default; before, every call opened a new one.
  // (https.request reads the module's globalAgent at each call.)
  if (!keepAlive) {
    const https = createRequire(import.meta.url)("node:https") as { globalAgent: Https.Agent }
    https.globalAgent = new Https.Agent({ keepAlive: false })
  }
  // node-mailjet is CommonJS whose typings claim a default export it does not have at run time.
  const Mailjet = createRequire(import.meta.url)("node-mailjet") as MailjetStatic
  // Its defaults, but for the host (it always speaks https): the certificate is trusted through
  // NODE_EXTRA_CA_CERTS, so verification stays on.
  const mailjet = Mailjet.apiConnect(setup.apiKey, setup.secretKey, { config: { host: setup.url.replace(/^https:\/\//, "") } })
  const post = async (body: ManageContactBody) => {
    try {
      const res = await mailjet.post("contactslist", { version: "v3" }).id(setup.listId).action("managecontact").request(body)
      return res.response.status === 201
    } catch {
      return false
    }
  }
  const warm = bodies(readAll(setup.warmupPath))
  const measured = bodies(readAll(setup.eventsPath))
  return {
    warmUp: () => pool(warm.length, setup.concurrency, (i) => post(warm[i]!)),
    run: async () => ({ events: measured.length, ...(await pool(measured.length, setup.concurrency, (i) => post(measured[i]!))) })
  }
}

const deliveryRunner = (): Runner => {
  const layer = Delivery.live({ overrides: { concurrency: setup.concurrency, maxRps: 1e9 } }).pipe(
    Layer.provide(NodeFileSystem.layer),
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({
      MAILJET_API_KEY: setup.apiKey,
      MAILJET_SECRET_KEY: setup.secretKey,
      MAILJET_LIST_ID: String(setup.listId),
      MAILJET_BASE_URL: setup.url
    }))),
    Layer.merge(NodeFileSystem.layer)
  )
  const runtime = ManagedRuntime.make(layer)
  const deliverFile = (file: string) =>
    Effect.gen(function*() {
      const delivery = yield* Delivery
      return yield* delivery.run(readLines(file)).pipe(
        Stream.runFold({ events: 0, ok: 0, failed: 0 }, (acc, r) => {
          acc.events++
          if (r.outcome.outcome === "delivered") acc.ok++
          else acc.failed++
          return acc
        })
      )
    })
  return {
    warmUp: () => runtime.runPromise(deliverFile(setup.warmupPath)),
    run: () => runtime.runPromise(deliverFile(setup.eventsPath))
  }
}

const mappingRunner = (): Runner => {
  const warm = readAll(setup.warmupPath)
  const measured = readAll(setup.eventsPath)
  const prepareAll = (lines: ReadonlyArray<string>) => {
    let ok = 0
    let failed = 0
    for (let i = 0; i < lines.length; i++) {
      if (prepareOne(lines[i]!, i + 1)._tag === "Send") ok++
      else failed++
    }
    return { events: lines.length, ok, failed }
  }
  return {
    warmUp: async () => prepareAll(warm),
    run: async () => prepareAll(measured)
  }
}

const main = async () => {
  const runner = setup.kind === "undici"
    ? undiciRunner()
    : setup.kind === "node-mailjet"
    ? mailjetRunner(true)
    : setup.kind === "node-mailjet-no-keepalive"
    ? mailjetRunner(false)
    : setup.kind === "delivery"
    ? deliveryRunner()
    : mappingRunner()
  await runner.warmUp()
  const go = new Promise<void>((resolve) => {
    process.once("message", (m: ToContender) => {
      if (m.type === "go") resolve()
    })
  })
  send({ type: "warm" })
  await go
  const cpu = process.cpuUsage()
  const started = performance.now()
  const counts = await runner.run()
  const seconds = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  const result: ContenderResult = { ...counts, seconds, cpuMs: (used.user + used.system) / 1000, maxRssKb: process.resourceUsage().maxRSS }
  // Exit at once: keep-alive sockets would hold the process open for their idle timeout.
  send({ type: "result", result }, () => process.exit(0))
}

main().catch((e: unknown) => {
  send({ type: "error", message: e instanceof Error ? e.stack ?? e.message : String(e) }, () => process.exit(1))
})
