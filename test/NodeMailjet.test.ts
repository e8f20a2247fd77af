/**
 * Mailjet's own Node SDK (node-mailjet) against the simulator, over HTTPS as it always speaks:
 * the calls a real integration makes get the recorded shapes back. A throw-away certificate
 * (scripts/bench/cert.ts) is trusted by this process's https agent, so verification stays on.
 */
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Https from "node:https"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { makeCert } from "../scripts/bench/cert.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { KEY, presetProperties, SECRET } from "./support/layers.js"
import { SEED_BODY } from "./support/seed.js"

interface SdkResponse {
  readonly response: { readonly status: number }
  readonly body: { readonly Count: number; readonly Total: number; readonly Data: ReadonlyArray<Record<string, unknown>> }
}
interface SdkRequest {
  id(value: string | number): SdkRequest
  action(name: string): SdkRequest
  request(data?: unknown, params?: Record<string, unknown>): Promise<SdkResponse>
}
interface SdkClient {
  get(resource: string, config: { readonly version: "v3" }): SdkRequest
  post(resource: string, config: { readonly version: "v3" }): SdkRequest
}
// CommonJS whose typings claim a default export it does not have at run time.
const Mailjet = createRequire(import.meta.url)("node-mailjet") as {
  readonly Client: { apiConnect(key: string, secret: string, params: { readonly config: { readonly host: string } }): SdkClient }
}

const keys = (o: Record<string, unknown> | undefined) => Object.keys(o ?? {}).sort()

/** The simulator on HTTPS (127.0.0.1, a free port); yields the SDK's `host`. */
const httpsSimulator = Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "signal-mailjet-sdk-"))),
    (d) => Effect.sync(() => Fs.rmSync(d, { recursive: true, force: true }))
  )
  const cert = makeCert(dir)
  const ca = Fs.readFileSync(cert.certPath)
  // axios (inside node-mailjet) uses the global agent; trust the test certificate there only.
  const previous = Https.globalAgent.options.ca
  yield* Effect.acquireRelease(
    Effect.sync(() => {
      Https.globalAgent.options.ca = ca
    }),
    () =>
      Effect.sync(() => {
        Https.globalAgent.options.ca = previous
      })
  )
  const { app } = yield* Simulator.makeApp({
    apiKey: KEY,
    secretKey: SECRET,
    lists: [{ id: 1, name: "Signal" }, { id: 2, name: "Other" }],
    properties: presetProperties,
    seed: 9
  })
  const server = yield* NodeHttpServer.make(
    () => Https.createServer({ key: Fs.readFileSync(cert.keyPath), cert: ca }),
    { port: 0, host: "127.0.0.1" }
  )
  yield* server.serve(app).pipe(HttpMiddleware.withTracerDisabledWhenEffect(() => true))
  if (server.address._tag !== "TcpAddress") return yield* Effect.dieMessage("not a TCP address")
  return `127.0.0.1:${server.address.port}`
})

it.live("node-mailjet: list GET with a Name filter, managecontact, contactmetadata, contact, contactdata, listrecipient", () =>
  Effect.gen(function*() {
    const host = yield* httpsSimulator
    const mj = Mailjet.Client.apiConnect(KEY, SECRET, { config: { host } })
    const call = (f: () => Promise<SdkResponse>) => Effect.promise(f)

    const lists = yield* call(() => mj.get("contactslist", { version: "v3" }).request({}, { Name: "Other" }))
    expect(lists.response.status).toBe(200)
    expect(lists.body.Count).toBe(1)
    expect(keys(lists.body.Data[0])).toEqual(["Address", "CreatedAt", "ID", "IsDeleted", "Name", "SubscriberCount"])
    expect(lists.body.Data[0]).toMatchObject({ ID: 2, Name: "Other", IsDeleted: false })

    const managed = yield* call(() =>
      mj.post("contactslist", { version: "v3" }).id(1).action("managecontact").request({ ...SEED_BODY })
    )
    expect(managed.response.status).toBe(201)
    expect(keys(managed.body.Data[0])).toEqual(["Action", "ContactID", "Email", "Name", "Properties"])
    expect(managed.body.Data[0]).toMatchObject({ Email: SEED_BODY.Email, Name: SEED_BODY.Name, Properties: SEED_BODY.Properties })

    const created = yield* call(() =>
      mj.post("contactmetadata", { version: "v3" }).request({ Datatype: "str", Name: "middle_name", NameSpace: "static" })
    )
    expect(created.response.status).toBe(201)
    expect(keys(created.body.Data[0])).toEqual(["Datatype", "ID", "Name", "NameSpace"])

    const contact = yield* call(() => mj.get("contact", { version: "v3" }).id(SEED_BODY.Email).request())
    expect(contact.response.status).toBe(200)
    expect(contact.body.Data[0]).toMatchObject({ Email: SEED_BODY.Email, Name: SEED_BODY.Name, LastUpdateAt: "" })

    const data = yield* call(() => mj.get("contactdata", { version: "v3" }).id(SEED_BODY.Email).request())
    expect(keys(data.body.Data[0])).toEqual(["ContactID", "Data", "ID", "MethodCollection"])
    expect(data.body.Data[0]!["Data"]).toEqual(
      Object.entries(SEED_BODY.Properties).map(([Name, Value]) => ({ Name, Value }))
    )

    const recipients = yield* call(() =>
      mj.get("listrecipient", { version: "v3" }).request({}, { ContactsList: 1, ContactEmail: SEED_BODY.Email })
    )
    expect(recipients.body.Count).toBe(1)
    expect(keys(recipients.body.Data[0])).toEqual(
      ["ContactID", "ID", "IsActive", "IsUnsubscribed", "ListID", "ListName", "SubscribedAt", "UnsubscribedAt"]
    )
    expect(recipients.body.Data[0]).toMatchObject({ ListID: 1, IsUnsubscribed: false, UnsubscribedAt: "" })
  }).pipe(Effect.scoped))
