/** The simulator's GDPR erasure, `DELETE /v4/contacts/{id}`, as Mailjet's recordings show it. */
import { describe, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Simulator from "../src/Simulator/Simulator.js"

const AUTH = "Basic " + Buffer.from("k:s").toString("base64")

const call = (path: string, method = "GET", body?: unknown) =>
  Effect.flatMap(Simulator.Simulator, (sim) =>
    Effect.promise(async () => {
      const res = await fetch(sim.url + path, {
        method,
        headers: { authorization: AUTH, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) })
      })
      const text = await res.text()
      return { status: res.status, text, length: res.headers.get("content-length"), json: text === "" ? undefined : JSON.parse(text) as any }
    }))

const subscribe = (email: string) => call("/v3/REST/contactslist/1/managecontact", "POST", { Email: email, Action: "addforce", Name: "Jane" })

layer(Simulator.layer({ apiKey: "k", secretKey: "s", seed: 1 }), { excludeTestServices: true })("Simulator erasure", (it) => {
  describe("DELETE /v4/contacts/{id}", () => {
    it.effect("answers 200 with an empty body, anonymises the contact at once, and it leaves its list", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const created = yield* subscribe("jane@example.com")
        const id = created.json.Data[0].ContactID as number
        expect((yield* call("/v3/REST/contactslist/1")).json.Data[0].SubscriberCount).toBe(1)
        const erased = yield* call(`/v4/contacts/${id}`, "DELETE")
        expect(erased.status).toBe(200)
        expect(erased.text).toBe("")
        expect(erased.length).toBe("0")
        // Not found by its email any more, however often it is asked.
        for (let i = 0; i < 3; i++) {
          const byEmail = yield* call("/v3/REST/contact/jane@example.com")
          expect(byEmail.status).toBe(404)
          expect(byEmail.json).toEqual({ ErrorInfo: "", ErrorMessage: "Object not found", StatusCode: 404 })
        }
        // By its ID: the anonymised contact, ID kept.
        const byId = yield* call(`/v3/REST/contact/${id}`)
        expect(byId.status).toBe(200)
        expect(byId.json.Data[0].ID).toBe(id)
        expect(byId.json.Data[0].Name).toBe("Anonymized")
        expect(byId.json.Data[0].Email).toMatch(/^[0-9a-f]{32}@domain\.invalid$/)
        expect(JSON.stringify(byId.json)).not.toContain("jane")
        expect((yield* call("/v3/REST/contactslist/1")).json.Data[0].SubscriberCount).toBe(0)
        expect(Option.isNone(yield* sim.contact("jane@example.com"))).toBe(true)
      }))

    it.effect("answers the same 200 for an ID that does not exist, and for one erased already", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const unknown = yield* call("/v4/contacts/987654", "DELETE")
        expect([unknown.status, unknown.text]).toEqual([200, ""])
        const id = (yield* subscribe("ann@example.com")).json.Data[0].ContactID as number
        yield* call(`/v4/contacts/${id}`, "DELETE")
        const before = (yield* call(`/v3/REST/contact/${id}`)).json.Data[0].Email
        const again = yield* call(`/v4/contacts/${id}`, "DELETE")
        expect([again.status, again.text]).toEqual([200, ""])
        expect((yield* call(`/v3/REST/contact/${id}`)).json.Data[0].Email).toBe(before)
      }))

    it.effect("the address may be uploaded again later: a new contact with a new ID", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const first = (yield* subscribe("bo@example.com")).json.Data[0].ContactID as number
        yield* call(`/v4/contacts/${first}`, "DELETE")
        const again = yield* subscribe("bo@example.com")
        expect(again.status).toBe(201)
        const second = again.json.Data[0].ContactID as number
        expect(second).not.toBe(first)
        expect((yield* call("/v3/REST/contact/bo@example.com")).json.Data[0].ID).toBe(second)
        expect((yield* call(`/v3/REST/contact/${first}`)).json.Data[0].Name).toBe("Anonymized")
      }))

    it.effect("needs the credentials like every call, and only DELETE", () =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* sim.reset
        const id = (yield* subscribe("cy@example.com")).json.Data[0].ContactID as number
        const res = yield* Effect.promise(() => fetch(`${sim.url}/v4/contacts/${id}`, { method: "DELETE" }))
        expect(res.status).toBe(401)
        expect((yield* call(`/v4/contacts/${id}`, "GET")).status).toBe(405)
        expect((yield* call("/v3/REST/contact/cy@example.com")).status).toBe(200)
      }))
  })
})
