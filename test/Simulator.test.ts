import { assert, describe, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Simulator from "../src/Simulator/Simulator.js"

const API_KEY = "public-key"
const SECRET_KEY = "secret-key"
const AUTH = "Basic " + Buffer.from(`${API_KEY}:${SECRET_KEY}`).toString("base64")

const options: Simulator.LayerOptions = {
  apiKey: API_KEY,
  secretKey: SECRET_KEY,
  lists: [{ id: 1, name: "Signal" }, { id: 7, name: "Other" }],
  properties: [
    { name: "firstname", datatype: "str" },
    { name: "Age", datatype: "int" },
    { name: "score", datatype: "float" },
    { name: "vip", datatype: "bool" },
    { name: "signed_up_at", datatype: "datetime" }
  ],
  seed: 42
}

interface Reply {
  readonly status: number
  readonly statusText: string
  readonly headers: Headers
  readonly text: string
  readonly json: unknown
}

interface CallOptions {
  readonly method?: string
  /** A string is sent as is (for malformed JSON); anything else is JSON-encoded. */
  readonly body?: unknown
  readonly auth?: string | null
}

const send = (path: string, opts: CallOptions = {}) =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    const headers: Record<string, string> = {}
    if (opts.auth !== null) headers.authorization = opts.auth ?? AUTH
    if (opts.body !== undefined) headers["content-type"] = "application/json"
    const init: RequestInit = { method: opts.method ?? (opts.body === undefined ? "GET" : "POST"), headers }
    if (opts.body !== undefined) init.body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body)
    return yield* Effect.tryPromise(async (): Promise<Reply> => {
      const res = await fetch(sim.url + path, init)
      const text = await res.text()
      let json: unknown = undefined
      try {
        json = JSON.parse(text)
      } catch {
        // not JSON
      }
      return { status: res.status, statusText: res.statusText, headers: res.headers, text, json }
    })
  })

const call = (path: string, opts: CallOptions = {}) => Effect.orDie(send(path, opts))

const manage = (body: unknown, listId = 1) => call(`/v3/REST/contactslist/${listId}/managecontact`, { body })

const membership = (email: string, listId = 1) =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    const contact = yield* sim.contact(email)
    return Option.getOrUndefined(contact)?.lists.get(listId)
  })

const subscriberCount = (listId = 1) =>
  Effect.map(call(`/v3/REST/contactslist/${listId}`), (r) => {
    const data = (r.json as { Data: ReadonlyArray<{ SubscriberCount: number }> }).Data
    return data[0]!.SubscriberCount
  })

const fresh = Effect.flatMap(Simulator.Simulator, (sim) =>
  Effect.zipRight(sim.setFaults({}), sim.reset))

layer(Simulator.layer(options), { excludeTestServices: true })("Simulator", (it) => {
  describe("auth", () => {
    it.effect("401 with an empty text/html body and the Basic challenge", () =>
      Effect.gen(function*() {
        yield* fresh
        for (const auth of [null, "Basic " + Buffer.from(`${API_KEY}:wrong`).toString("base64"), "Bearer x"]) {
          const r = yield* call("/v3/REST/contactslist/1", { auth })
          expect(r.status).toBe(401)
          expect(r.text).toBe("")
          expect(r.headers.get("content-type")).toBe("text/html")
          expect(r.headers.get("www-authenticate")).toBe("Basic realm=\"Provide an apiKey and secretKey\"")
        }
        // Nothing is applied without auth.
        const m = yield* call("/v3/REST/contactslist/1/managecontact", {
          auth: null,
          body: { Email: "a@example.com", Action: "addforce" }
        })
        expect(m.status).toBe(401)
        expect((yield* Simulator.Simulator.pipe(Effect.flatMap((s) => s.contacts))).length).toBe(0)
      }))
  })

  describe("contactslist", () => {
    it.effect("GET by id returns the list envelope", () =>
      Effect.gen(function*() {
        yield* fresh
        const r = yield* call("/v3/REST/contactslist/1")
        expect(r.status).toBe(200)
        expect(r.headers.get("content-type")).toBe("application/json")
        const body = r.json as { Count: number; Total: number; Data: ReadonlyArray<Record<string, unknown>> }
        expect(body.Count).toBe(1)
        expect(body.Total).toBe(1)
        expect(Object.keys(body.Data[0]!).sort()).toEqual(
          ["Address", "CreatedAt", "ID", "IsDeleted", "Name", "SubscriberCount"]
        )
        expect(body.Data[0]).toMatchObject({ ID: 1, Name: "Signal", IsDeleted: false, SubscriberCount: 0 })
      }))

    it.effect("unknown list id is 404 Object not found", () =>
      Effect.gen(function*() {
        yield* fresh
        const r = yield* call("/v3/REST/contactslist/999")
        expect(r.status).toBe(404)
        expect(r.statusText).toBe("Object not found")
        expect(r.json).toEqual({ ErrorInfo: "", ErrorMessage: "Object not found", StatusCode: 404 })
        const m = yield* manage({ Email: "a@example.com", Action: "addforce" }, 999)
        expect(m.status).toBe(404)
        expect(m.json).toEqual({ ErrorInfo: "", ErrorMessage: "Object not found", StatusCode: 404 })
      }))

    it.effect("GET lists them with Limit/Offset; POST creates one", () =>
      Effect.gen(function*() {
        yield* fresh
        const all = yield* call("/v3/REST/contactslist")
        expect((all.json as { Data: ReadonlyArray<{ ID: number }> }).Data.map((l) => l.ID)).toEqual([1, 7])
        const second = yield* call("/v3/REST/contactslist?Limit=1&Offset=1")
        expect(second.json).toMatchObject({ Count: 1, Total: 1, Data: [{ ID: 7 }] })
        const created = yield* call("/v3/REST/contactslist", { body: { Name: "Created by test" } })
        expect(created.status).toBe(201)
        expect(created.json).toMatchObject({ Count: 1, Data: [{ ID: 8, Name: "Created by test", SubscriberCount: 0 }] })
        const empty = yield* call("/v3/REST/contactslist", { body: { Name: "" } })
        expect(empty.json).toEqual({
          ErrorInfo: "MJ08 Property Name is invalid: MJ04 Value must have at least length 1",
          ErrorMessage: "Object properties invalid",
          StatusCode: 400
        })
      }))
  })

  describe("managecontact", () => {
    it.effect("201 with the documented body shape", () =>
      Effect.gen(function*() {
        yield* fresh
        const r = yield* manage({
          Email: "mrsmith@mailjet.com",
          Name: "MrSmith",
          Action: "addnoforce",
          Properties: { firstname: "John", age: 42 }
        })
        expect(r.status).toBe(201)
        expect(r.headers.get("content-type")).toBe("application/json")
        expect(r.json).toEqual({
          Count: 1,
          Data: [{
            ContactID: 1,
            Email: "mrsmith@mailjet.com",
            Action: "addnoforce",
            Name: "MrSmith",
            Properties: { firstname: "John", age: 42 }
          }],
          Total: 1
        })
        // The reply carries all properties, including ones set earlier.
        const again = yield* manage({ Email: "mrsmith@mailjet.com", Action: "addforce", Properties: { vip: true } })
        expect(again.json).toMatchObject({
          Data: [{ ContactID: 1, Name: "MrSmith", Properties: { firstname: "John", age: 42, vip: true } }]
        })
        const second = yield* manage({ Email: "other@mailjet.com", Action: "addforce" })
        expect(second.json).toMatchObject({ Data: [{ ContactID: 2, Name: "", Properties: {} }] })
      }))

    it.effect("subscription state machine", () =>
      Effect.gen(function*() {
        yield* fresh
        const email = "state@example.com"
        const step = (action: string) =>
          Effect.gen(function*() {
            const r = yield* manage({ Email: email, Action: action })
            expect(r.status).toBe(201)
            return yield* membership(email)
          })
        expect(yield* step("addnoforce")).toBe("subscribed")
        expect(yield* subscriberCount()).toBe(1)
        expect(yield* step("unsub")).toBe("unsubscribed")
        expect(yield* subscriberCount()).toBe(0)
        // addnoforce keeps an existing unsubscribe...
        expect(yield* step("addnoforce")).toBe("unsubscribed")
        expect(yield* subscriberCount()).toBe(0)
        // ...addforce re-subscribes.
        expect(yield* step("addforce")).toBe("subscribed")
        expect(yield* step("addnoforce")).toBe("subscribed")
        expect(yield* subscriberCount()).toBe(1)
        expect(yield* step("remove")).toBeUndefined()
        expect(yield* subscriberCount()).toBe(0)
        // remove keeps the contact in the account.
        const sim = yield* Simulator.Simulator
        expect(Option.isSome(yield* sim.contact(email))).toBe(true)
        expect(yield* step("remove")).toBeUndefined()
        // unsub of a non-member adds it as unsubscribed (UNCONFIRMED choice), so addnoforce cannot subscribe it.
        expect(yield* step("unsub")).toBe("unsubscribed")
        expect(yield* step("addnoforce")).toBe("unsubscribed")
        // Lists are independent.
        const other = yield* manage({ Email: email, Action: "addnoforce" }, 7)
        expect(other.status).toBe(201)
        expect(yield* membership(email, 7)).toBe("subscribed")
        expect(yield* membership(email, 1)).toBe("unsubscribed")
      }))

    it.effect("undefined property and wrong types are all listed; nothing changes", () =>
      Effect.gen(function*() {
        yield* fresh
        const r = yield* manage({
          Email: "props@example.com",
          Action: "addforce",
          Properties: { firstname: 1, nope: "x", age: 1.5, score: "3.5", vip: "true", signed_up_at: "yesterday" }
        })
        expect(r.status).toBe(400)
        expect(r.statusText).toBe("Object properties invalid")
        expect(r.json).toEqual({
          ErrorInfo: {
            Properties: [
              { firstname: "Property type does not match definition" },
              { nope: "Property not defined" },
              { age: "Property type does not match definition" },
              { score: "Property type does not match definition" },
              { vip: "Property type does not match definition" },
              { signed_up_at: "Property type does not match definition" }
            ]
          },
          ErrorMessage: "Object properties invalid",
          StatusCode: 400
        })
        const sim = yield* Simulator.Simulator
        expect(Option.isNone(yield* sim.contact("props@example.com"))).toBe(true)
        const single = yield* manage({ Email: "props@example.com", Action: "addforce", Properties: { nope: 1 } })
        expect(single.json).toEqual({
          ErrorInfo: { Properties: [{ nope: "Property not defined" }] },
          ErrorMessage: "Object properties invalid",
          StatusCode: 400
        })
      }))

    it.effect("values that fit each datatype; null clears", () =>
      Effect.gen(function*() {
        yield* fresh
        const ok = yield* manage({
          Email: "types@example.com",
          Action: "addforce",
          Properties: { firstname: "A", age: 3, score: 2, vip: false, signed_up_at: "2018-01-01T00:00:00" }
        })
        expect(ok.status).toBe(201)
        for (const when of [1514764800, "2018-01-01T00:00:00Z", "2018-01-01T00:00:00.123+02:00"]) {
          const r = yield* manage({ Email: "types@example.com", Action: "addforce", Properties: { signed_up_at: when } })
          expect(r.status).toBe(201)
        }
        const cleared = yield* manage({ Email: "types@example.com", Action: "addforce", Properties: { firstname: null } })
        expect(cleared.status).toBe(201)
        const sim = yield* Simulator.Simulator
        const contact = Option.getOrThrow(yield* sim.contact("types@example.com"))
        expect(contact.properties).toEqual({ age: 3, score: 2, vip: false, signed_up_at: "2018-01-01T00:00:00.123+02:00" })
      }))

    it.effect("unknown top-level field", () =>
      Effect.gen(function*() {
        yield* fresh
        const r = yield* manage({ Email: "a@example.com", Action: "addforce", firstname: "A" })
        expect(r.status).toBe(400)
        expect(r.json).toEqual({
          ErrorInfo: "",
          ErrorMessage: "Invalid json input: object \"\"->\"TContactslistManageContact\" has no property \"firstname\"",
          StatusCode: 400
        })
      }))

    it.effect("malformed and empty JSON", () =>
      Effect.gen(function*() {
        yield* fresh
        const bad = yield* manage("{\"Email\": \"a@example.com\",")
        expect(bad.status).toBe(400)
        const body = bad.json as { ErrorInfo: unknown; ErrorMessage: string; StatusCode: number }
        expect(body.ErrorInfo).toBe("")
        expect(body.StatusCode).toBe(400)
        expect(body.ErrorMessage.startsWith("Invalid json input: ")).toBe(true)
        expect(bad.statusText.startsWith("Invalid json input: ")).toBe(true)
        const empty = yield* call("/v3/REST/contactslist/1/managecontact", {
          method: "POST",
          body: ""
        })
        expect(empty.json).toEqual({
          ErrorInfo: "",
          ErrorMessage: "Invalid json input: unexpected end of stream at stream position 0 ...|...",
          StatusCode: 400
        })
      }))

    it.effect("missing Email and Action, invalid email, Properties as a string", () =>
      Effect.gen(function*() {
        yield* fresh
        const r = yield* manage({})
        expect(r.status).toBe(400)
        expect(r.json).toEqual({
          ErrorInfo: {
            Email: "MJ08 Property email is invalid: MJ03 A non-empty value is required",
            Action: "Invalid action: "
          },
          ErrorMessage: "Object properties invalid",
          StatusCode: 400
        })
        const bad = yield* manage({ Email: "not-an-email", Action: "subscribe" })
        expect(bad.json).toEqual({
          ErrorInfo: {
            Email: "MJ08 Property email is invalid: No @ character in mail",
            Action: "Invalid action: subscribe"
          },
          ErrorMessage: "Object properties invalid",
          StatusCode: 400
        })
        const spaced = yield* manage({ Email: " a@example.com", Action: "addforce" })
        expect(spaced.json).toMatchObject({ ErrorInfo: { Email: "MJ08 Property email is invalid: Invalid character in mail" } })
        const str = yield* manage({ Email: "a@example.com", Action: "addforce", Properties: "{\"firstname\":\"A\"}" })
        expect(str.status).toBe(400)
        expect(str.json).toMatchObject({ ErrorMessage: "Object properties invalid", ErrorInfo: { Properties: expect.any(String) } })
        const sim = yield* Simulator.Simulator
        expect((yield* sim.contacts).length).toBe(0)
      }))

    it.effect("emails and field names are case-insensitive", () =>
      Effect.gen(function*() {
        yield* fresh
        const first = yield* manage({
          email: "Mixed.Case@Example.COM",
          ACTION: "addforce",
          name: "Mixed",
          properties: { FirstName: "M" }
        })
        expect(first.status).toBe(201)
        expect(first.json).toMatchObject({
          Data: [{ ContactID: 1, Email: "mixed.case@example.com", Name: "Mixed", Properties: { firstname: "M" } }]
        })
        const second = yield* manage({ Email: "mixed.case@example.com", Action: "Unsub" })
        expect(second.json).toMatchObject({ Data: [{ ContactID: 1, Action: "Unsub", Name: "Mixed" }] })
        const sim = yield* Simulator.Simulator
        expect((yield* sim.contacts).length).toBe(1)
        expect(yield* membership("MIXED.case@example.com")).toBe("unsubscribed")
      }))
  })

  describe("contactmetadata", () => {
    it.effect("GET list and by id, POST, duplicate, bad datatype", () =>
      Effect.gen(function*() {
        yield* fresh
        const list = yield* call("/v3/REST/contactmetadata?Limit=2")
        expect(list.json).toEqual({
          Count: 2,
          Data: [
            { Datatype: "str", ID: 1, Name: "firstname", NameSpace: "static" },
            { Datatype: "int", ID: 2, Name: "age", NameSpace: "static" }
          ],
          Total: 2
        })
        const all = yield* call("/v3/REST/contactmetadata?Limit=0")
        expect((all.json as { Count: number }).Count).toBe(5)
        const one = yield* call("/v3/REST/contactmetadata/4")
        expect(one.json).toEqual({ Count: 1, Data: [{ Datatype: "bool", ID: 4, Name: "vip", NameSpace: "static" }], Total: 1 })
        const missing = yield* call("/v3/REST/contactmetadata/999")
        expect(missing.status).toBe(404)

        const created = yield* call("/v3/REST/contactmetadata", {
          body: { Datatype: "str", Name: "Middle_Name", NameSpace: "static" }
        })
        expect(created.status).toBe(201)
        expect(created.json).toEqual({
          Count: 1,
          Data: [{ Datatype: "str", ID: 6, Name: "middle_name", NameSpace: "static" }],
          Total: 1
        })
        const dup = yield* call("/v3/REST/contactmetadata", { body: { datatype: "int", name: "middle_name" } })
        expect(dup.status).toBe(400)
        expect(dup.json).toEqual({
          ErrorInfo: "",
          ErrorMessage: "MJ18 A ContactMetadata resource with value \"middle_name\" for Name already exists.",
          StatusCode: 400
        })
        const badType = yield* call("/v3/REST/contactmetadata", { body: { Datatype: "text", Name: "x" } })
        expect(badType.status).toBe(400)
        expect(badType.json).toMatchObject({ ErrorMessage: "Object properties invalid", StatusCode: 400 })

        // A newly defined property can be set right away.
        const used = yield* manage({ Email: "meta@example.com", Action: "addforce", Properties: { MIDDLE_NAME: "Q" } })
        expect(used.json).toMatchObject({ Data: [{ Properties: { middle_name: "Q" } }] })
      }))
  })

  describe("other routes", () => {
    it.effect("GET contact by email or id", () =>
      Effect.gen(function*() {
        yield* fresh
        yield* manage({ Email: "c@example.com", Name: "C", Action: "addforce" })
        const byEmail = yield* call("/v3/REST/contact/C%40Example.com")
        expect(byEmail.status).toBe(200)
        expect(byEmail.json).toMatchObject({ Count: 1, Data: [{ ID: 1, Email: "c@example.com", Name: "C" }] })
        const byId = yield* call("/v3/REST/contact/1")
        expect(byId.json).toMatchObject({ Data: [{ Email: "c@example.com" }] })
        const missing = yield* call("/v3/REST/contact/unknown@example.com")
        expect(missing.status).toBe(404)
        expect(missing.json).toEqual({ ErrorInfo: "", ErrorMessage: "Object not found", StatusCode: 404 })
        const invalid = yield* call("/v3/REST/contact/Non-existent-id")
        expect(invalid.json).toEqual({
          ErrorInfo: "",
          ErrorMessage: "Invalid email address \"Non-existent-id\", reason: \"No @ character in mail\"",
          StatusCode: 400
        })
      }))

    it.effect("unknown resource, wrong method, wrong version", () =>
      Effect.gen(function*() {
        yield* fresh
        const unknown = yield* call("/v3/REST/contacts")
        expect(unknown.status).toBe(400)
        expect(unknown.json).toEqual({ ErrorInfo: "", ErrorMessage: "Unknown resource: \"contacts\"", StatusCode: 400 })
        const wrong = yield* call("/v3/REST/contactslist/1/managecontact")
        expect(wrong.status).toBe(405)
        expect(wrong.json).toEqual({ ErrorInfo: "", ErrorMessage: "Method not allowed", StatusCode: 405 })
        const put = yield* call("/v3/REST/contactslist/1", { method: "PUT" })
        expect(put.status).toBe(405)
        const v31 = yield* call("/v3.1/REST/contactslist")
        expect(v31.status).toBe(404)
        expect(v31.headers.get("content-type")).toBe("text/html")
      }))
  })

  // Each test here fails on the simulator before it followed these recordings.
  describe("recorded fidelity", () => {
    const data = (r: Reply) => (r.json as { Data: ReadonlyArray<Record<string, unknown>> }).Data

    it.effect("a deleted list: DELETE 204, then still readable with IsDeleted true; it takes no contacts", () =>
      Effect.gen(function*() {
        yield* fresh
        const del = yield* call("/v3/REST/contactslist/7", { method: "DELETE" })
        expect(del.status).toBe(204)
        expect(del.text).toBe("")
        expect(del.headers.get("content-type")).toBe("application/json")
        const after = yield* call("/v3/REST/contactslist/7")
        expect(after.status).toBe(200)
        expect(data(after)[0]).toMatchObject({ ID: 7, IsDeleted: true, Name: "Other" })
        const deleted = yield* call("/v3/REST/contactslist?IsDeleted=true")
        expect(data(deleted).map((l) => l["ID"])).toEqual([7])
        const m = yield* manage({ Email: "d@example.com", Action: "addforce" }, 7)
        expect(m.status).toBe(404)
        expect(yield* Effect.flatMap(Simulator.Simulator, (sim) => sim.contacts)).toEqual([])
        expect((yield* call("/v3/REST/contactslist/999", { method: "DELETE" })).status).toBe(404)
      }))

    it.effect("GET contactslist?Name= filters, Count 0 when none match", () =>
      Effect.gen(function*() {
        yield* fresh
        const one = yield* call("/v3/REST/contactslist?Name=Other")
        expect(one.json).toMatchObject({ Count: 1, Total: 1 })
        expect(data(one).map((l) => l["ID"])).toEqual([7])
        const none = yield* call("/v3/REST/contactslist?Name=Nope")
        expect(none.json).toEqual({ Count: 0, Data: [], Total: 0 })
      }))

    it.effect("listrecipient: recorded fields, subscription times, filters, paging, DELETE", () =>
      Effect.gen(function*() {
        yield* fresh
        yield* manage({ Email: "a@example.com", Action: "addforce" })
        yield* manage({ Email: "a@example.com", Action: "unsub" })
        yield* manage({ Email: "b@example.com", Action: "addnoforce" })
        yield* manage({ Email: "a@example.com", Action: "addforce" }, 7)
        const inList = yield* call("/v3/REST/listrecipient?ContactsList=1&Limit=0")
        expect(inList.status).toBe(200)
        const rows = data(inList)
        expect(rows.map((r) => Object.keys(r).sort())).toEqual([0, 1].map(() =>
          ["ContactID", "ID", "IsActive", "IsUnsubscribed", "ListID", "ListName", "SubscribedAt", "UnsubscribedAt"]
        ))
        const [a, b] = rows
        expect(a).toMatchObject({ ContactID: 1, ListID: 1, ListName: "Signal", IsActive: true, IsUnsubscribed: true })
        expect(a!["SubscribedAt"]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
        expect(a!["UnsubscribedAt"]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/)
        expect(b).toMatchObject({ ContactID: 2, IsUnsubscribed: false, UnsubscribedAt: "" })
        const ofA = yield* call("/v3/REST/listrecipient?Contact=1")
        expect(data(ofA).map((r) => r["ListID"])).toEqual([1, 7])
        const byEmail = yield* call("/v3/REST/listrecipient?ContactEmail=B%40example.com&ContactsList=1")
        expect(data(byEmail).map((r) => r["ContactID"])).toEqual([2])
        const unsub = yield* call("/v3/REST/listrecipient?ContactsList=1&Unsub=true")
        expect(data(unsub).map((r) => r["ContactID"])).toEqual([1])
        const second = yield* call("/v3/REST/listrecipient?Limit=1&Offset=1")
        expect(second.json).toMatchObject({ Count: 1, Data: [{ ContactID: 2 }] })
        const del = yield* call(`/v3/REST/listrecipient/${String(b!["ID"])}`, { method: "DELETE" })
        expect(del.status).toBe(204)
        expect(yield* membership("b@example.com")).toBeUndefined()
        expect((yield* call(`/v3/REST/listrecipient/${String(b!["ID"])}`)).status).toBe(404)
      }))

    it.effect("contactdata: the Name/Value list; contact?ContactsList=; getcontactslists", () =>
      Effect.gen(function*() {
        yield* fresh
        yield* manage({ Email: "a@example.com", Action: "addforce", Properties: { firstname: "Ann", age: 7 } })
        yield* manage({ Email: "b@example.com", Action: "addforce" }, 7)
        const cd = yield* call("/v3/REST/contactdata/a@example.com")
        expect(cd.json).toEqual({
          Count: 1,
          Data: [{
            ContactID: 1,
            Data: [{ Name: "firstname", Value: "Ann" }, { Name: "age", Value: "7" }],
            ID: 1,
            MethodCollection: ""
          }],
          Total: 1
        })
        expect((yield* call("/v3/REST/contactdata/none@example.com")).status).toBe(404)
        const in7 = yield* call("/v3/REST/contact?ContactsList=7")
        expect(data(in7).map((c) => c["Email"])).toEqual(["b@example.com"])
        const lists = yield* call("/v3/REST/contact/a@example.com/getcontactslists")
        expect(lists.status).toBe(200)
        expect(data(lists)).toHaveLength(1)
        expect(Object.keys(data(lists)[0]!).sort()).toEqual(["IsActive", "IsUnsub", "ListID", "SubscribedAt"])
        expect(data(lists)[0]).toMatchObject({ IsActive: true, IsUnsub: false, ListID: 1 })
        expect((yield* call("/v3/REST/contact/none@example.com/getcontactslists")).status).toBe(404)
      }))

    it.effect("contactmetadata is unique per Namespace|Name", () =>
      Effect.gen(function*() {
        yield* fresh
        const historic = yield* call("/v3/REST/contactmetadata", {
          body: { Datatype: "str", Name: "firstname", NameSpace: "historic" }
        })
        expect(historic.status).toBe(201)
        expect(data(historic)[0]).toMatchObject({ Name: "firstname", NameSpace: "historic" })
        const again = yield* call("/v3/REST/contactmetadata", { body: { Datatype: "str", Name: "FirstName" } })
        expect(again.status).toBe(400)
        // managecontact still sets the static one.
        const m = yield* manage({ Email: "a@example.com", Action: "addforce", Properties: { firstname: "A" } })
        expect(m.status).toBe(201)
      }))

    it.effect.prop(
      "law: listrecipient, getcontactslists and SubscriberCount give the state the actions give in their own order; only addforce re-subscribes",
      { actions: Schema.Array(Schema.Literal("addforce", "addnoforce", "unsub", "remove")).pipe(Schema.maxItems(10)) },
      ({ actions }) =>
        Effect.gen(function*() {
          yield* fresh
          yield* manage({ Email: "seen@example.com", Action: "addforce" })
          // The model: each action applied to the previous state, in the events' own order.
          let model: "subscribed" | "unsubscribed" | undefined = undefined
          for (const Action of actions) {
            expect((yield* manage({ Email: "p@example.com", Action })).status).toBe(201)
            model = Action === "addforce"
              ? "subscribed"
              : Action === "addnoforce"
              ? model ?? "subscribed"
              : Action === "unsub"
              ? "unsubscribed"
              : undefined
          }
          const recipients = yield* call("/v3/REST/listrecipient?ContactsList=1&ContactEmail=p@example.com")
          expect(data(recipients).map((r) => r["IsUnsubscribed"])).toEqual(model === undefined ? [] : [model === "unsubscribed"])
          const lists = yield* call("/v3/REST/contact/p@example.com/getcontactslists")
          expect(lists.status).toBe(actions.length === 0 ? 404 : 200)
          expect(lists.status === 200 ? data(lists).map((l) => l["IsUnsub"]) : []).toEqual(
            model === undefined ? [] : [model === "unsubscribed"]
          )
          expect(yield* subscriberCount()).toBe(model === "subscribed" ? 2 : 1)
        }),
      { fastCheck: { numRuns: 60 } }
    )

    it.effect("GET contact: LastUpdateAt stays \"\" after managecontact", () =>
      Effect.gen(function*() {
        yield* fresh
        yield* manage({ Email: "a@example.com", Name: "A", Action: "addforce", Properties: { firstname: "A" } })
        yield* manage({ Email: "a@example.com", Action: "unsub" })
        const c = yield* call("/v3/REST/contact/a@example.com")
        expect(data(c)[0]).toMatchObject({ Name: "A", LastUpdateAt: "" })
        expect(data(c)[0]!["CreatedAt"]).not.toBe("")
      }))
  })

  describe("faults", () => {
    it.effect("maxRps answers 429 with Mailjet's HTML body and no Retry-After", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        yield* sim.setFaults({ maxRps: 3 })
        const statuses: Array<number> = []
        let limited: Reply | undefined
        for (let i = 0; i < 5; i++) {
          const r = yield* call("/v3/REST/contactslist/1")
          statuses.push(r.status)
          if (r.status === 429) limited = r
        }
        expect(statuses).toEqual([200, 200, 200, 429, 429])
        assert(limited !== undefined)
        expect(limited.text.startsWith("<html><body><h1>429 Too Many Requests</h1>")).toBe(true)
        expect(limited.headers.get("content-type")).toBe("text/html")
        expect(limited.headers.get("retry-after")).toBeNull()
        // The window slides: after a second the limit admits requests again.
        yield* Effect.sleep("1050 millis")
        expect((yield* call("/v3/REST/contactslist/1")).status).toBe(200)
        yield* sim.setFaults({})
      }))

    it.effect("errorRate answers 500 (with ErrorIdentifier) or 503", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        yield* sim.setFaults({ errorRate: 1 })
        const seen = new Set<number>()
        for (let i = 0; i < 30; i++) {
          const r = yield* manage({ Email: "err@example.com", Action: "addforce" })
          seen.add(r.status)
          if (r.status === 500) {
            expect(r.json).toMatchObject({
              ErrorIdentifier: expect.stringMatching(/^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/),
              ErrorInfo: "",
              ErrorMessage: "An Unexpected Error occurred during API request",
              StatusCode: 500
            })
          }
        }
        expect([...seen].sort()).toEqual([500, 503])
        expect((yield* sim.contacts).length).toBe(0)
        yield* sim.setFaults({})
      }))

    it.effect("resetRate destroys the connection: fetch throws ECONNRESET", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        yield* sim.setFaults({ resetRate: 1 })
        const error = yield* Effect.flip(send("/v3/REST/contactslist/1/managecontact", {
          body: { Email: "reset@example.com", Action: "addforce" }
        }))
        const cause = (error.error as { cause?: { code?: string } }).cause
        expect(cause?.code).toBe("ECONNRESET")
        expect((yield* sim.contacts).length).toBe(0)
        yield* sim.setFaults({})
        // The server keeps serving new connections.
        expect((yield* call("/v3/REST/contactslist/1")).status).toBe(200)
        const recorded = yield* sim.requests
        expect(recorded.map((r) => r.status)).toEqual([0, 200])
      }))

    it.effect("outage answers 503 to everything, even without auth", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        yield* sim.setFaults({ outage: true })
        const r = yield* manage({ Email: "o@example.com", Action: "addforce" })
        expect(r.status).toBe(503)
        expect(r.headers.get("content-type")).toBe("application/json")
        expect(r.json).toMatchObject({ StatusCode: 503 })
        expect((yield* call("/v3/REST/contactslist/1", { auth: null })).status).toBe(503)
        yield* sim.setFaults({})
        expect((yield* call("/v3/REST/contactslist/1")).status).toBe(200)
      }))

    it.effect("latency delays every reply", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        yield* sim.setFaults({ latencyMs: 150 })
        const started = Date.now()
        const r = yield* call("/v3/REST/contactslist/1")
        expect(r.status).toBe(200)
        expect(Date.now() - started).toBeGreaterThanOrEqual(145)
        yield* sim.setFaults({})
        const quick = Date.now()
        yield* call("/v3/REST/contactslist/1")
        expect(Date.now() - quick).toBeLessThan(145)
      }))
  })

  describe("recording", () => {
    it.effect("records method, path, body, status and time; reset clears", () =>
      Effect.gen(function*() {
        yield* fresh
        const sim = yield* Simulator.Simulator
        const before = Date.now()
        yield* manage({ Email: "rec@example.com", Action: "addforce" })
        yield* manage("not json")
        yield* call("/v3/REST/contactslist/1?Limit=1", { auth: null })
        const recorded = yield* sim.requests
        expect(recorded.map(({ at: _at, ...rest }) => rest)).toEqual([
          {
            method: "POST",
            path: "/v3/REST/contactslist/1/managecontact",
            body: { Email: "rec@example.com", Action: "addforce" },
            status: 201
          },
          { method: "POST", path: "/v3/REST/contactslist/1/managecontact", body: "not json", status: 400 },
          { method: "GET", path: "/v3/REST/contactslist/1?Limit=1", body: undefined, status: 401 }
        ])
        for (const r of recorded) {
          expect(r.at).toBeGreaterThanOrEqual(before - 5)
          expect(r.at).toBeLessThanOrEqual(Date.now())
        }
        yield* sim.reset
        expect(yield* sim.requests).toEqual([])
        expect(yield* sim.contacts).toEqual([])
        expect(yield* subscriberCount()).toBe(0)
        // Properties survive a reset.
        const again = yield* manage({ Email: "rec@example.com", Action: "addforce", Properties: { firstname: "R" } })
        expect(again.json).toMatchObject({ Data: [{ ContactID: 1 }] })
      }))
  })
})

describe("Simulator seeds", () => {
  layer(Simulator.layer({ ...options, recordLimit: 3 }), { excludeTestServices: true })((it) => {
    it.effect("keeps only the last recordLimit requests", () =>
      Effect.gen(function*() {
        for (let i = 0; i < 5; i++) yield* call(`/v3/REST/contactslist/1?i=${i}`)
        const sim = yield* Simulator.Simulator
        expect((yield* sim.requests).map((r) => r.path)).toEqual([
          "/v3/REST/contactslist/1?i=2",
          "/v3/REST/contactslist/1?i=3",
          "/v3/REST/contactslist/1?i=4"
        ])
      }))
  })

  layer(Simulator.layer({ ...options, seed: 7, faults: { errorRate: 0.5 } }), { excludeTestServices: true })((it) => {
    it.effect("the same seed gives the same fault sequence", () =>
      Effect.gen(function*() {
        const run = Effect.gen(function*() {
          const statuses: Array<number> = []
          for (let i = 0; i < 20; i++) statuses.push((yield* call("/v3/REST/contactslist/1")).status)
          return statuses
        })
        const first = yield* run
        // A second simulator with the same seed, served next to the first.
        const second = yield* run.pipe(Effect.provide(Simulator.layer({ ...options, seed: 7, faults: { errorRate: 0.5 } })))
        expect(second).toEqual(first)
        expect(new Set(first).size).toBeGreaterThan(1)
      }))
  })
})

describe("Simulator with no properties given", () => {
  layer(Simulator.layer({ apiKey: API_KEY, secretKey: SECRET_KEY, seed: 1 }), { excludeTestServices: true })((it) => {
    it.effect("starts like a fresh account: firstname, name, country, newsletter_sub; no first_name", () =>
      Effect.gen(function*() {
        const meta = yield* call("/v3/REST/contactmetadata")
        const rows = (meta.json as { Data: ReadonlyArray<{ Name: string; Datatype: string; NameSpace: string }> }).Data
        expect(rows.map((m) => [m.Name, m.Datatype, m.NameSpace])).toEqual([
          ["firstname", "str", "static"],
          ["name", "str", "static"],
          ["country", "str", "static"],
          ["newsletter_sub", "str", "static"]
        ])
        const m = yield* manage({ Email: "a@example.com", Action: "addforce", Properties: { first_name: "A" } })
        expect(m.status).toBe(400)
        expect(m.json).toMatchObject({ ErrorInfo: { Properties: [{ first_name: "Property not defined" }] } })
      }))
  })
})
