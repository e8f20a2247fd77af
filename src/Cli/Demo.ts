/**
 * `npm start`: the whole path on a fresh clone with no credentials. The simulator runs in this
 * process; the bundled events go through the same layers `deliver` uses.
 */
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import { Delivery } from "../Delivery/Delivery.js"
import { Consent } from "../Consent.js"
import { givenStack } from "../Delivery/Stack.js"
import { MailjetClient } from "../Mailjet/MailjetClient.js"
import { MailjetConfig } from "../Mailjet/MailjetConfig.js"
import { normaliseEmail, rawEmail } from "../Mapping.js"
import { readLines } from "../Run/Ndjson.js"
import type { Result } from "../Domain/Outcome.js"
import { DefaultPreset } from "../Preset/Preset.js"
import { decodeSignalEvent } from "../Domain/SignalEvent.js"
import * as Simulator from "../Simulator/Simulator.js"
import { describeContact, formatContact } from "./ContactCommand.js"

// This module runs bundled into dist/bin.js (scripts/bundle.mjs): the package's examples are beside dist.
const EXAMPLES = new URL("../examples/events.ndjson", import.meta.url)
const LIST_ID = 1
// Demo-only keys for the in-process simulator; never real credentials.
const KEY = "demo-api-key"
const SECRET = "demo-secret-key"

const SHOWN = "sam.lee@example.com"

const mailjetConfig = (baseUrl: string) =>
  MailjetConfig.layerFrom({ apiKey: Redacted.make(KEY), secretKey: Redacted.make(SECRET), listId: LIST_ID, baseUrl })

const clientLayer = (baseUrl: string) => MailjetClient.layer.pipe(Layer.provideMerge(mailjetConfig(baseUrl)))

const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}

const emailOf = (raw: unknown): string => {
  const event = decodeSignalEvent(raw)
  if (Either.isLeft(event)) return ""
  const email = rawEmail(event.right)
  return email === undefined ? "" : normaliseEmail(email) ?? email
}

const consentOf = (raw: unknown): string => {
  const event = decodeSignalEvent(raw)
  return Either.isRight(event) ? Consent.make().resolve(event.right) : ""
}

export const runDemo = Effect.gen(function*() {
  const sim = yield* Simulator.Simulator
  const delivery = yield* Delivery
  const results = yield* delivery.run(readLines(decodeURIComponent(EXAMPLES.pathname))).pipe(Stream.runCollect)
  const requests = yield* sim.requests
  // One contact's requests go in event order, so each contact's queue lines up with its results.
  const sent = new Map<string, Array<Simulator.RecordedRequest>>()
  for (const r of requests) {
    if (!r.path.endsWith("/managecontact")) continue
    const email = String((r.body as { readonly Email?: unknown } | null)?.Email ?? "")
    sent.set(email, [...(sent.get(email) ?? []), r])
  }

  yield* Console.log(`signal-mailjet demo: ${results.length} example events to a local Mailjet simulator (${sim.url})\n`)
  yield* Console.log(table(
    ["line", "event", "email", "consent", "action", "name", "properties sent", "Mailjet answered"],
    Array.from(results, (r: Result) => {
      const o = r.outcome
      const request = o.outcome === "delivered" || o.outcome === "dead-lettered"
        ? sent.get(emailOf(r.raw))?.shift()
        : undefined
      const body = (request?.body ?? {}) as { readonly Action?: string; readonly Name?: string; readonly Properties?: unknown }
      return [
        String(r.line),
        r.event ?? "?",
        emailOf(r.raw),
        consentOf(r.raw),
        body.Action ?? "",
        body.Name ?? "",
        body.Properties === undefined ? "" : JSON.stringify(body.Properties),
        "status" in o ? `${o.status} ${o.outcome}` : `${request ? `${request.status} ` : ""}${o.outcome}: ${o.reason}`
      ]
    })
  ))

  const contacts = yield* sim.contacts
  yield* Console.log(`\nContacts in list ${LIST_ID} afterwards:\n`)
  yield* Console.log(table(
    ["email", "name", "subscription", "properties"],
    contacts.map((c) => [c.email, c.name, c.lists.get(LIST_ID) ?? "not in list", JSON.stringify(c.properties)])
  ))
  yield* Console.log(
    "\nsam.lee@example.com stays unsubscribed: the later Signed Up had no consent, so it was sent as addnoforce, which keeps an unsubscribe."
  )
  // Read back over the API, as `signal-mailjet contact` does against a real account.
  const shown = yield* describeContact(SHOWN).pipe(Effect.provide(clientLayer(sim.url)))
  yield* Console.log(`\nWhat Mailjet holds for ${SHOWN} (signal-mailjet contact ${SHOWN}):\n`)
  yield* Console.log(formatContact(shown))
}).pipe(
  Effect.provide(
    Layer.unwrapEffect(Effect.map(Simulator.Simulator, (sim) =>
      // Preflight as `deliver` runs it: the simulator defines every property the preset writes.
      givenStack(Delivery.layer, {
        mailjet: { apiKey: Redacted.make(KEY), secretKey: Redacted.make(SECRET), listId: LIST_ID, baseUrl: sim.url },
        preset: DefaultPreset,
        settings: { concurrency: 4, maxRps: 1000, retryBase: Duration.millis(50), bulk: "off" }
      }, { missing: "fail" })))
  ),
  Effect.provide(Simulator.layer({
    apiKey: KEY,
    secretKey: SECRET,
    lists: [{ id: LIST_ID, name: "Signal demo" }],
    properties: Array.from(DefaultPreset.datatypes, ([name, datatype]) => ({ name, datatype }))
  }))
)
