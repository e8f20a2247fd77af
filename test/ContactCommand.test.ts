/**
 * End to end: `signal-mailjet contact EMAIL` as a built process (dist/bin.js, built by
 * test/globalSetup.ts) against the simulator, after real `deliver` runs of the seed example.
 */
import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as Simulator from "../src/Simulator/Simulator.js"
import { runBin } from "./support/bin.js"
import { simulatorOptions } from "./support/layers.js"
import { SEED_EVENT } from "./support/seed.js"

const KEY = "contact-apikey-5RZQ1"
const SECRET = "contact-secret-8WKD3"
const LIST_ID = 4

const run = (
  sim: Simulator.SimulatorService,
  args: ReadonlyArray<string>,
  stdin = "",
  extra: Readonly<Record<string, string>> = {}
) =>
  Effect.promise(() =>
    runBin(args, {
      MAILJET_API_KEY: KEY,
      MAILJET_SECRET_KEY: SECRET,
      MAILJET_LIST_ID: String(LIST_ID),
      MAILJET_BASE_URL: sim.url,
      MAILJET_MAX_RPS: "1000",
      ...extra
    }, stdin)
  ).pipe(Effect.tap((r) =>
    Effect.sync(() => {
      expect(r.stdout + r.stderr).not.toContain(SECRET)
    })
  ))

const UNSUBSCRIBED = JSON.stringify({
  type: "track",
  event: "Unsubscribed",
  messageId: "c0ffee00-0000-4000-8000-000000000001",
  context: { traits: { email: "jane.doe@example.com" } }
})

const ISO = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z/

layer(
  // This file's own credentials: its output is checked for them.
  Simulator.layer(simulatorOptions({ apiKey: KEY, secretKey: SECRET, lists: [{ id: LIST_ID, name: "Signal" }], seed: 11 })),
  { excludeTestServices: true }
)("signal-mailjet contact (end to end)", (it) => {
  it.effect("after the seed example: name, properties, subscribed; after Unsubscribed: unsubscribed with its time", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const delivered = yield* run(sim, ["deliver"], `${JSON.stringify(SEED_EVENT)}\n`)
      expect(delivered.code).toBe(0)

      const shown = yield* run(sim, ["contact", "jane.doe@example.com"])
      expect(shown.code).toBe(0)
      const text = shown.stdout.split("\n")
      expect(text[0]).toMatch(/^jane\.doe@example\.com: contact 1, created /)
      expect(text).toContain("name: Jane Doe")
      expect(text).toContain("  first_name: Jane")
      expect(text).toContain("  last_name: Doe")
      expect(text).toContain("  signup_method: email")
      expect(shown.stdout).toMatch(new RegExp(`^list ${LIST_ID}: subscribed since ${ISO.source}$`, "m"))

      const json = yield* run(sim, ["contact", "--json", "jane.doe@example.com"])
      expect(JSON.parse(json.stdout)).toMatchObject({
        email: "jane.doe@example.com",
        found: true,
        name: "Jane Doe",
        properties: { first_name: "Jane", last_name: "Doe", signup_method: "email" },
        list: { id: LIST_ID, subscription: "subscribed" }
      })

      const unsub = yield* run(sim, ["deliver"], `${UNSUBSCRIBED}\n`)
      expect(unsub.code).toBe(0)
      const after = yield* run(sim, ["contact", "jane.doe@example.com"])
      expect(after.code).toBe(0)
      expect(after.stdout).toMatch(new RegExp(`^list ${LIST_ID}: unsubscribed at ${ISO.source} \\(subscribed ${ISO.source}\\)$`, "m"))
      const afterJson = JSON.parse((yield* run(sim, ["contact", "--json", "jane.doe@example.com"])).stdout) as {
        list: { subscription: string; unsubscribedAt: string }
      }
      expect(afterJson.list.subscription).toBe("unsubscribed")
      expect(afterJson.list.unsubscribedAt).toMatch(ISO)
    }))

  it.effect("no such contact: said plainly, exit 1; a contact outside the list: not in the list", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const none = yield* run(sim, ["contact", "nobody@example.com"])
      expect(none.code).toBe(1)
      expect(none.stdout.trim()).toBe("nobody@example.com: no such contact in Mailjet for these credentials")
      expect(JSON.parse((yield* run(sim, ["contact", "--json", "nobody@example.com"])).stdout)).toEqual({
        email: "nobody@example.com",
        found: false
      })
      // Taken out of the list by a remove: the contact stays in the account.
      const auth = `Basic ${Buffer.from(`${KEY}:${SECRET}`).toString("base64")}`
      for (const Action of ["addforce", "remove"]) {
        yield* Effect.promise(() =>
          fetch(`${sim.url}/v3/REST/contactslist/${LIST_ID}/managecontact`, {
            method: "POST",
            headers: { authorization: auth, "content-type": "application/json" },
            body: JSON.stringify({ Email: "out@example.com", Action })
          })
        )
      }
      const out = yield* run(sim, ["contact", "out@example.com"])
      expect(out.code).toBe(0)
      expect(out.stdout).toContain(`list ${LIST_ID}: not in the list`)
      expect(out.stdout).toContain("properties: (none)")
    }))

  it.effect("a wrong MAILJET_LIST_ID: no such list, exit 2, with the fix; also for a contact the account has", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      expect((yield* run(sim, ["deliver"], `${JSON.stringify(SEED_EVENT)}\n`)).code).toBe(0)
      for (const email of ["jane.doe@example.com", "nobody@example.com"]) {
        const r = yield* run(sim, ["contact", email], "", { MAILJET_LIST_ID: "999" })
        expect(r.code, r.stderr).toBe(2)
        expect(r.stdout).toBe("")
        expect(r.stderr).toMatch(/^signal-mailjet contact: Mailjet has no contact list 999 for this API key \(404 Object not found\)\. Check MAILJET_LIST_ID /)
        expect(r.stderr).not.toContain("not in the list")
      }
    }))

  it.effect("not an email address: said so, exit 2, and Mailjet is not asked", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const before = (yield* sim.requests).length
      for (const text of ["not-an-email", "jane.doe@", "@example.com", "jane doe@example.com"]) {
        const r = yield* run(sim, ["contact", text])
        expect(r.code, text).toBe(2)
        expect(r.stdout).toBe("")
        expect(r.stderr).toBe(`signal-mailjet contact: ${JSON.stringify(text)} is not an email address; give the contact's address, e.g. jane.doe@example.com\n`)
      }
      expect((yield* sim.requests).length).toBe(before)
    }))

  it.effect("wrong credentials: exit 2 with the fix, no secret printed", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      const r = yield* run(sim, ["contact", "a@example.com"], "", { MAILJET_SECRET_KEY: "contact-wrong-secret-2PX" })
      expect(r.code).toBe(2)
      expect(r.stdout).toBe("")
      expect(r.stderr).toMatch(/^signal-mailjet contact: Mailjet rejected the credentials \(401\)/)
      expect(r.stderr).not.toContain("contact-wrong-secret-2PX")
    }))
})
