/**
 * The package as a host installs it: `npm pack`, the README's install line in a fresh project (the
 * tarball standing in for the registry's `signal-mailjet`), then the README's embedding example
 * (examples/embedding.mjs) run by plain `node` in that project against the simulator. This is the
 * check that the published files, `exports`, and the peer dependencies on Effect are enough.
 */
import { expect, it } from "@effect/vitest"
import { execFile, execFileSync } from "node:child_process"
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Option } from "effect"
import { afterAll, beforeAll } from "vitest"
import * as Simulator from "../src/Simulator/Simulator.js"

const root = fileURLToPath(new URL("..", import.meta.url))

/** The README's install line, word for word (README "Embedding"). */
export const INSTALL =
  "npm install signal-mailjet effect@~3.22.4 @effect/platform@~0.97.2 @effect/platform-node@~0.108.2 @effect/cli@~0.77.2"

let host = ""
let installSeconds = 0

const npm = (args: ReadonlyArray<string>, cwd: string) =>
  execFileSync("npm", [...args, "--no-audit", "--no-fund"], { cwd, encoding: "utf8", timeout: 240_000 })

beforeAll(() => {
  host = mkdtempSync(join(tmpdir(), "signal-mailjet-host-"))
  const started = Date.now()
  // dist is fresh: the global setup built it, so packing skips `prepare`.
  const packed = JSON.parse(npm(["pack", "--ignore-scripts", "--json", "--pack-destination", host], root)) as Array<
    { filename: string }
  >
  npm(["init", "-y"], host)
  const [cmd, sub, _pkg, ...peers] = INSTALL.split(" ")
  npm([sub!, join(host, packed[0]!.filename), ...peers], host)
  expect(cmd).toBe("npm")
  installSeconds = (Date.now() - started) / 1000
  copyFileSync(join(root, "examples/embedding.mjs"), join(host, "embedding.mjs"))
  copyFileSync(join(root, "test/support/embeddedHost.mjs"), join(host, "embeddedHost.mjs"))
}, 300_000)

afterAll(() => {
  if (host !== "") rmSync(host, { recursive: true, force: true })
})

it("the README gives the install line and the embedding example verbatim", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8")
  expect(readme).toContain(INSTALL)
  expect(readme).toContain("examples/embedding.mjs")
  // The code block is the file that the test above installs and runs.
  expect(readme).toContain(readFileSync(join(root, "examples/embedding.mjs"), "utf8").trimEnd())
})

it("the bin's first line, with node's flags on it, fits in the 127 characters a kernel before Linux 5.1 reads", () => {
  const first = readFileSync(join(root, "dist/bin.js"), "utf8").split("\n", 1)[0]!
  expect(first.startsWith("#!/usr/bin/env -S ")).toBe(true)
  expect(first).toContain(" node --")
  expect(first.length).toBeLessThanOrEqual(127)
})

it("the bin starts when NODE_OPTIONS bounds the heap too, as containers often do: its first line's bounds win, V8 does not abort", () => {
  // `--max-heap-size` beside the semi-spaces' bound and NODE_OPTIONS' `--max-old-space-size` is a V8 abort.
  const help = execFileSync(join(root, "dist/bin.js"), ["--help"], {
    encoding: "utf8",
    env: { ...process.env, NODE_OPTIONS: "--max-old-space-size=512 --max-semi-space-size=16" },
    timeout: 30_000
  })
  expect(help).toContain("deliver")
})

it("the host has one copy of effect, its own, and the package's typings", () => {
  const ls = execFileSync("npm", ["ls", "effect", "--all", "--parseable"], { cwd: host, encoding: "utf8" })
  expect(ls.split("\n").filter((l) => l.endsWith("node_modules/effect"))).toEqual([join(host, "node_modules/effect")])
  const manifest = JSON.parse(readFileSync(join(host, "node_modules/signal-mailjet/package.json"), "utf8"))
  expect(manifest.peerDependencies.effect).toBe("~3.22.4")
  expect(readFileSync(join(host, "node_modules/signal-mailjet", manifest.types), "utf8")).toContain("Delivery")
  console.log(`pack + install: ${installSeconds.toFixed(1)} s`)
})

const runHost = (env: Record<string, string>, program: ReadonlyArray<string> = ["embedding.mjs"]) =>
  Effect.async<{ code: number | null; stdout: string; stderr: string }>((resume) => {
    const child = execFile(process.execPath, program, {
      cwd: host,
      env: { PATH: process.env["PATH"] ?? "", ...env },
      timeout: 30_000
    }, (error, stdout, stderr) => resume(Effect.succeed({ code: error ? (error.code as number) ?? 1 : 0, stdout, stderr })))
    return Effect.sync(() => child.kill())
  })

const simulator = Simulator.layer({
  apiKey: "host-key",
  secretKey: "host-secret",
  lists: [{ id: 42, name: "Newsletter" }],
  properties: [
    { name: "first_name", datatype: "str" },
    { name: "last_name", datatype: "str" },
    { name: "signup_method", datatype: "str" }
  ]
})

it.live("the example, installed from the tarball, delivers the seed event in a separate node process", () =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    const env = { MAILJET_API_KEY: "host-key", MAILJET_LIST_ID: "42", MAILJET_BASE_URL: sim.url }
    const ran = yield* runHost({ ...env, MAILJET_SECRET_KEY: "host-secret" })
    expect(ran.stderr).toBe("")
    expect(ran.code).toBe(0)
    expect(JSON.parse(ran.stdout)).toEqual({ outcome: "delivered", action: "addforce", status: 201, attempts: 1 })
    const requests = yield* sim.requests
    // Delivery.live() runs preflight as `deliver` does (the list, its properties, its unsubscribed
    // contacts), then the event's one write.
    expect(requests.map((r) => `${r.method} ${r.path.split("?")[0]}`)).toEqual([
      "GET /v3/REST/contactslist/42",
      "GET /v3/REST/contactmetadata",
      "GET /v3/REST/listrecipient",
      "POST /v3/REST/contactslist/42/managecontact"
    ])
    const contact = yield* sim.contact("jane.doe@example.com")
    expect(Option.map(contact, (c) => c.lists.get(42))).toEqual(Option.some("subscribed"))

    // A fatal error reaches the host as a failure whose message names the fix, and no secret.
    const denied = yield* runHost({ ...env, MAILJET_SECRET_KEY: "wrong-secret" })
    expect(denied.code).toBe(1)
    expect(denied.stderr).toMatch(/MAILJET_API_KEY and MAILJET_SECRET_KEY/)
    expect(denied.stderr + denied.stdout).not.toContain("wrong-secret")
  }).pipe(Effect.provide(simulator)), 60_000)

it.live("installed from the tarball, the embedded default keeps an unsubscribe: signed up, unsubscribed in Mailjet, then an Order Completed with consent is demoted and the list keeps 0 subscribers", () =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    const env = { MAILJET_API_KEY: "host-key", MAILJET_SECRET_KEY: "host-secret", MAILJET_LIST_ID: "42", MAILJET_BASE_URL: sim.url }
    const account = (method: string, path: string, body?: unknown) =>
      Effect.promise(async () => {
        const res = await fetch(`${sim.url}${path}`, {
          method,
          headers: { authorization: `Basic ${Buffer.from("host-key:host-secret").toString("base64")}` },
          ...(body === undefined ? {} : { body: JSON.stringify(body) })
        })
        return { status: res.status, json: await res.json() as { Data: ReadonlyArray<Record<string, unknown>> } }
      })
    const subscribers = Effect.map(account("GET", "/v3/REST/contactslist/42"), (r) => r.json.Data[0]!["SubscriberCount"])
    const jane = Effect.map(sim.contact("jane.doe@example.com"), Option.flatMap((c) => Option.fromNullable(c.lists.get(42))))

    // The README's program: Jane signs up with consent.
    const signUp = yield* runHost(env)
    expect(signUp.code).toBe(0)
    expect(JSON.parse(signUp.stdout)).toMatchObject({ outcome: "delivered", action: "addforce" })
    expect(yield* subscribers).toBe(1)

    // She follows the unsubscribe link in a Mailjet email.
    expect((yield* account("POST", "/_sim/recipient/unsub", { Email: "jane.doe@example.com" })).status).toBe(200)
    expect(yield* subscribers).toBe(0)

    // Then an order, with the same standing consent, from a host embedding the same default layer.
    const order = yield* runHost(env, ["embeddedHost.mjs", JSON.stringify({
      type: "track",
      event: "Order Completed",
      messageId: "a3c1f0de-5b7e-4d2a-8f61-0c9e2b4d7a15",
      timestamp: "2026-11-27T09:00:00.000Z",
      properties: { revenue: 20, currency: "EUR" },
      context: { traits: { email: "jane.doe@example.com", first_name: "Jane" }, consent: { marketing: true } }
    })])
    expect(order.stderr).toBe("")
    expect(order.code).toBe(0)
    expect(JSON.parse(order.stdout)).toMatchObject({
      outcome: "delivered",
      action: "addnoforce",
      demoted: expect.stringMatching(/^unsubscribed in Mailjet/)
    })
    expect(yield* jane).toEqual(Option.some("unsubscribed"))
    expect(yield* subscribers).toBe(0)
  }).pipe(Effect.provide(simulator)), 60_000)
