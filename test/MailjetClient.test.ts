import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { MailjetClient, readErrorBody } from "../src/Mailjet/MailjetClient.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { clientLayer, KEY, presetProperties, SECRET, simulatorLayer } from "./support/layers.js"
import { SEED_BODY } from "./support/seed.js"

const seedBody = SEED_BODY

const simulator = simulatorLayer(7)

/** A client for the running simulator, built per test so config can vary. */
const withClient = <A, E>(
  use: (client: MailjetClient["Type"]) => Effect.Effect<A, E>,
  options: Parameters<typeof clientLayer>[1] = {}
) =>
  Effect.gen(function*() {
    const sim = yield* Simulator.Simulator
    return yield* Effect.flatMap(MailjetClient, use).pipe(Effect.provide(clientLayer(sim.url, options)))
  })

layer(simulator, { excludeTestServices: true })("MailjetClient against the simulator", (it) => {
  it.effect("managecontact: 201 with the contact id, and the simulator holds the contact", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const res = yield* withClient((c) => c.manageContact(seedBody))
      expect(res.status).toBe(201)
      expect(res.contactId).toBeTypeOf("number")
      const contact = yield* sim.contact("jane.doe@example.com")
      expect(contact._tag).toBe("Some")
      const requests = yield* sim.requests
      expect(requests.at(-1)?.path).toBe("/v3/REST/contactslist/1/managecontact")
      expect(requests.at(-1)?.body).toEqual(seedBody)
    }))

  it.effect("401 becomes Unauthorized, and its message says to re-copy both keys", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withClient((c) => c.manageContact(seedBody), { secret: "wrong" }))
      expect(error._tag).toBe("Unauthorized")
      expect(error.message).toMatch(/Re-copy both keys/)
      expect(error.message).not.toContain(SECRET)
    }))

  it.effect("404 on managecontact and on the list becomes ListNotFound with the id", () =>
    Effect.gen(function*() {
      const onManage = yield* Effect.flip(withClient((c) => c.manageContact(seedBody), { listId: 999 }))
      expect(onManage).toMatchObject({ _tag: "ListNotFound", listId: 999 })
      expect(onManage.message).toMatch(/MAILJET_LIST_ID/)
      const onList = yield* Effect.flip(withClient((c) => c.getList, { listId: 999 }))
      expect(onList).toMatchObject({ _tag: "ListNotFound", listId: 999 })
    }))

  it.effect("a deleted list is ListNotFound saying deleted, from getList and from managecontact", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const res = yield* Effect.promise(() =>
        fetch(`${sim.url}/v3/REST/contactslist/1`, {
          method: "DELETE",
          headers: { authorization: `Basic ${Buffer.from(`${KEY}:${SECRET}`).toString("base64")}` }
        })
      )
      expect(res.status).toBe(204)
      const onList = yield* Effect.flip(withClient((c) => c.getList))
      expect(onList).toMatchObject({ _tag: "ListNotFound", listId: 1, deleted: true })
      expect(onList.message).toMatch(/deleted/)
      const onManage = yield* Effect.flip(withClient((c) => c.manageContact(seedBody)))
      expect(onManage).toMatchObject({ _tag: "ListNotFound", deleted: true })
      yield* sim.reset
      expect((yield* withClient((c) => c.getList)).id).toBe(1)
    }))

  it.effect("reads: getContact, contactData, listRecipient and unsubscribedRecipients", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      expect(yield* withClient((c) => c.getContact("jane.doe@example.com"))).toEqual(Option.none())
      expect(yield* withClient((c) => c.contactData("jane.doe@example.com"))).toEqual(Option.none())
      expect(yield* withClient((c) => c.listRecipient("jane.doe@example.com"))).toEqual({ _tag: "NotInList" })
      yield* withClient((c) => c.manageContact(seedBody))
      const contact = Option.getOrThrow(yield* withClient((c) => c.getContact("Jane.Doe@example.com")))
      expect(contact).toMatchObject({ id: 1, email: "jane.doe@example.com", name: seedBody.Name })
      const data = Option.getOrThrow(yield* withClient((c) => c.contactData("jane.doe@example.com")))
      expect(Object.fromEntries(data)).toEqual(
        Object.fromEntries(Object.entries(seedBody.Properties ?? {}).map(([k, v]) => [k, String(v)]))
      )
      const subscribed = yield* withClient((c) => c.listRecipient("jane.doe@example.com"))
      expect(subscribed._tag).toBe("Subscribed")
      yield* withClient((c) => c.manageContact({ Email: "jane.doe@example.com", Action: "unsub" }))
      yield* withClient((c) => c.manageContact({ Email: "x@example.com", Action: "unsub" }))
      yield* withClient((c) => c.manageContact({ Email: "y@example.com", Action: "addforce" }))
      const unsubscribed = yield* withClient((c) => c.listRecipient("jane.doe@example.com"))
      expect(unsubscribed).toMatchObject({ _tag: "Unsubscribed" })
      expect(unsubscribed._tag === "Unsubscribed" ? unsubscribed.unsubscribedAt : "").toMatch(/^\d{4}-\d{2}-\d{2}T/)
      const first = yield* withClient((c) => c.unsubscribedRecipients({ offset: 0, limit: 1 }))
      const second = yield* withClient((c) => c.unsubscribedRecipients({ offset: 1, limit: 1 }))
      const third = yield* withClient((c) => c.unsubscribedRecipients({ offset: 2, limit: 1 }))
      expect([...first, ...second].map((r) => r.contactId)).toEqual([1, 2])
      expect(third).toEqual([])
      expect(yield* withClient((c) => c.listRecipient("y@example.com"), { listId: 1 })).toMatchObject({ _tag: "Subscribed" })
    }))

  it.effect("400 Property not defined becomes PropertyMissing naming the property", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(withClient((c) =>
        c.manageContact({ Email: "a@example.com", Action: "addnoforce", Properties: { shoe_size: "42" } })
      ))
      expect(error).toMatchObject({ _tag: "PropertyMissing", property: "shoe_size" })
      expect(error.message).toMatch(/--create-missing-properties/)
    }))

  it.effect("any other 400 becomes InvalidContact with Mailjet's message", () =>
    Effect.gen(function*() {
      const mismatch = yield* Effect.flip(withClient((c) =>
        c.manageContact({ Email: "a@example.com", Action: "addnoforce", Properties: { last_order_value: "lots" } })
      ))
      expect(mismatch._tag).toBe("InvalidContact")
      expect(mismatch.message).toMatch(/Property type does not match definition/)
      const badEmail = yield* Effect.flip(withClient((c) => c.manageContact({ Email: "nope", Action: "addforce" })))
      expect(badEmail._tag).toBe("InvalidContact")
      expect(badEmail.message).toMatch(/Object properties invalid/)
    }))

  it.effect("429 becomes RateLimited; 5xx, resets and timeouts become MailjetUnavailable", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      const manage = withClient((c) => c.manageContact(seedBody), { timeout: "200 millis" })
      yield* sim.setFaults({ maxRps: 1 })
      yield* Effect.ignore(manage)
      expect(yield* Effect.flip(manage)).toMatchObject({ _tag: "RateLimited" })
      yield* sim.setFaults({ outage: true })
      expect(yield* Effect.flip(manage)).toMatchObject({ _tag: "MailjetUnavailable", detail: "HTTP 503" })
      yield* sim.setFaults({ resetRate: 1 })
      expect(yield* Effect.flip(manage)).toMatchObject({ _tag: "MailjetUnavailable" })
      yield* sim.setFaults({ latencyMs: 1000 })
      const timedOut = yield* Effect.flip(manage)
      expect(timedOut._tag).toBe("MailjetUnavailable")
      expect(timedOut.message).toMatch(/no answer within 200ms/)
      yield* sim.setFaults({})
      expect((yield* manage).status).toBe(201)
    }))

  it.effect("getList, listProperties and defineProperty read and write contactmetadata", () =>
    Effect.gen(function*() {
      const list = yield* withClient((c) => c.getList)
      expect(list).toMatchObject({ id: 1, name: "Signal" })
      const before = yield* withClient((c) => c.listProperties)
      expect(before.map((p) => [p.name, p.datatype])).toEqual(presetProperties.map((p) => [p.name, p.datatype]))
      const created = yield* withClient((c) => c.defineProperty("plan", "str"))
      expect(created).toMatchObject({ name: "plan", datatype: "str" })
      const duplicate = yield* Effect.flip(withClient((c) => c.defineProperty("plan", "str")))
      expect(duplicate._tag).toBe("PropertyRejected")
      expect(duplicate.message).toMatch(/already exists/)
      const after = yield* withClient((c) => c.listProperties)
      expect(after.map((p) => p.name)).toContain("plan")
    }))
})

interface CannedReply {
  readonly status: number
  readonly reason?: string
  readonly type?: string
  readonly body: string
  readonly headers?: Record<string, string>
}

/** Replies exactly as recorded, whatever is asked, or per request when given a function; keeps what was asked. */
const cannedServer = (replyTo: CannedReply | ((method: string, url: string) => CannedReply)) =>
  Layer.scoped(
    Canned,
    Effect.acquireRelease(
      Effect.async<{ url: string; server: Http.Server; asked: Array<string> }>((resume) => {
        const asked: Array<string> = []
        const server = Http.createServer((req, res) => {
          req.resume()
          req.on("end", () => {
            asked.push(`${req.method} ${req.url}`)
            const reply = typeof replyTo === "function" ? replyTo(req.method ?? "", req.url ?? "") : replyTo
            res.writeHead(reply.status, reply.reason ?? "", {
              "content-type": reply.type ?? "application/json",
              ...reply.headers
            })
            res.end(reply.body)
          })
        })
        server.listen(0, "127.0.0.1", () =>
          resume(Effect.succeed({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, asked })))
      }),
      ({ server }) =>
        Effect.async<void>((resume) => {
          server.close(() => resume(Effect.void))
        })
    ).pipe(Effect.map(({ asked, url }) => ({ url, asked: () => asked.slice() })))
  )
class Canned extends Effect.Tag("test/Canned")<Canned, { readonly url: string; readonly asked: () => ReadonlyArray<string> }>() {}

const againstCanned = (reply: Parameters<typeof cannedServer>[0]) =>
  Effect.gen(function*() {
    const { url } = yield* Canned
    return yield* Effect.flip(Effect.flatMap(MailjetClient, (c) => c.manageContact(seedBody)).pipe(Effect.provide(clientLayer(url))))
  }).pipe(Effect.provide(cannedServer(reply)))

describe("MailjetClient on recorded Mailjet bodies", () => {
  it.live("401: empty text/html body with Www-Authenticate is not parsed as JSON", () =>
    Effect.gen(function*() {
      const e = yield* againstCanned({
        status: 401,
        reason: "Unauthorized",
        type: "text/html",
        body: "",
        headers: { "www-authenticate": "Basic realm=\"Provide an apiKey and secretKey\"" }
      })
      expect(e._tag).toBe("Unauthorized")
    }))

  it.live("429: the HTML page is not parsed as JSON", () =>
    Effect.gen(function*() {
      const e = yield* againstCanned({ status: 429, type: "text/html", body: "<html><body><h1>429 Too Many Requests</h1>" })
      expect(e._tag).toBe("RateLimited")
    }))

  it.live("404 Object not found", () =>
    Effect.gen(function*() {
      const e = yield* againstCanned({
        status: 404,
        reason: "Object not found",
        body: "{ \"ErrorInfo\" : \"\", \"ErrorMessage\" : \"Object not found\", \"StatusCode\" : 404 }"
      })
      expect(e).toMatchObject({ _tag: "ListNotFound", listId: 1 })
    }))

  it.live("a bulk job poll: Mailjet's own 404 (Object not found) is a job it does not know, Unknown; nginx's 404 page proves nothing and is MailjetUnavailable", () =>
    Effect.gen(function*() {
      const poll = (reply: CannedReply) =>
        Effect.gen(function*() {
          const { url } = yield* Canned
          return yield* Effect.either(Effect.flatMap(MailjetClient, (c) => c.bulkJob(4242)).pipe(Effect.provide(clientLayer(url))))
        }).pipe(Effect.provide(cannedServer(reply)))
      const mailjet = yield* poll({
        status: 404,
        reason: "Object not found",
        body: "{ \"ErrorInfo\" : \"\", \"ErrorMessage\" : \"Object not found\", \"StatusCode\" : 404 }"
      })
      expect(mailjet).toMatchObject({ _tag: "Right", right: { status: "Unknown", error: "HTTP 404: Object not found" } })
      const proxy = yield* poll({ status: 404, type: "text/html", body: "<html><head><title>404 Not Found</title></head><body><center>nginx</center></body></html>" })
      expect(proxy).toMatchObject({ _tag: "Left", left: { _tag: "MailjetUnavailable" } })
    }))

  it.live("500 with ErrorIdentifier", () =>
    Effect.gen(function*() {
      const e = yield* againstCanned({
        status: 500,
        body: "{\"ErrorIdentifier\": \"A8EBD4F2-69F4-4DFA-9547-EB4B5EF48D93\", \"ErrorInfo\": \"\", \"ErrorMessage\": \"An Unexpected Error occurred during API request\", \"StatusCode\": 500}"
      })
      // Mailjet support asks for this GUID: it must reach the reason and the dead letter.
      expect(e).toMatchObject({
        _tag: "MailjetUnavailable",
        detail: "HTTP 500, ErrorIdentifier A8EBD4F2-69F4-4DFA-9547-EB4B5EF48D93"
      })
    }))

  it.live("429's message does not promise a retry (check shows it too)", () =>
    Effect.gen(function*() {
      const e = yield* againstCanned({ status: 429, type: "text/html", body: "<html><body><h1>429 Too Many Requests</h1>" })
      expect(e._tag).toBe("RateLimited")
      expect(e.message).toMatch(/MAILJET_MAX_RPS/)
      expect(e.message).not.toMatch(/retried/)
    }))

  it.live("an HTML 404 from managecontact while the list exists: re-checked once, then a failed attempt with the body", () =>
    Effect.gen(function*() {
      const list = "{ \"Count\" : 1, \"Data\" : [{ \"Address\" : \"twkgdlfxg\", \"CreatedAt\" : \"2020-11-06T13:38:49Z\", \"ID\" : 1, \"IsDeleted\" : false, \"Name\" : \"Test List\", \"SubscriberCount\" : 0 }], \"Total\" : 1 }"
      const e = yield* Effect.gen(function*() {
        const canned = yield* Canned
        const error = yield* Effect.flip(
          Effect.flatMap(MailjetClient, (c) => c.manageContact(seedBody)).pipe(Effect.provide(clientLayer(canned.url)))
        )
        expect(canned.asked()).toEqual(["POST /v3/REST/contactslist/1/managecontact", "GET /v3/REST/contactslist/1"])
        return error
      }).pipe(Effect.provide(cannedServer((method) =>
        method === "GET"
          ? { status: 200, body: list }
          : { status: 404, type: "text/html", body: "<html>\r\n<head><title>404 Not Found</title></head>\r\n</html>" }
      )))
      expect(e._tag).toBe("MailjetUnavailable")
      expect(e.message).toContain("404 Not Found")
      expect(e.message).toContain("list 1 exists")
    }))

  it.live("400 empty-body reply (mailjet-gem#48) is InvalidContact with the field errors", () =>
    Effect.gen(function*() {
      const e = yield* againstCanned({
        status: 400,
        body:
          "{ \"ErrorMessage\" : \"Object properties invalid\", \"StatusCode\" : 400, \"ErrorInfo\" : { \"Email\" : \"MJ08 Property email is invalid: MJ03 A non-empty value is required\", \"Action\" : \"Invalid action: \" } }"
      })
      expect(e._tag).toBe("InvalidContact")
      expect(e.message).toContain("MJ08 Property email is invalid")
    }))

  it.live("a 2xx body that is not an envelope is MailjetUnavailable, not a crash", () =>
    Effect.gen(function*() {
      const e = yield* againstCanned({ status: 201, body: "<html>proxy</html>", type: "text/html" })
      expect(e._tag).toBe("MailjetUnavailable")
    }))

  it("readErrorBody reads the documented undefined-property and type-mismatch body", () => {
    const d = readErrorBody({
      ErrorInfo: { Properties: [{ property1: "Property not defined" }, { propertyN: "Property type does not match definition" }] },
      ErrorMessage: "Object properties invalid",
      StatusCode: 400
    })
    expect(d.undefinedProperties).toEqual(["property1"])
    expect(d.message).toBe(
      "Object properties invalid; property1: Property not defined; propertyN: Property type does not match definition"
    )
  })
})
