/**
 * The Mailjet Contacts API (v3 REST) as typed calls. One attempt per call: pacing and retrying are
 * the gateway's (MailjetGateway). The transport is MailjetHttp.ts, the shapes MailjetShapes.ts.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { MailjetConfig } from "./MailjetConfig.js"
import {
  BulkRefused,
  InvalidContact,
  ListNotFound,
  MailjetUnavailable,
  PropertyMissing,
  type RateLimited,
  type Unauthorized
} from "./MailjetError.js"
import { excerpt, parseJson, readErrorFile } from "./ErrorBody.js"
import { allPages, bulkBody, makeTransport } from "./MailjetHttp.js"
import {
  type BulkJob,
  BulkJobItem,
  type BulkRejection,
  ContactDataItem,
  ContactItem,
  type ContactList,
  type ContactState,
  checkManaged,
  envelope,
  isMailjetNotFound,
  ListItem,
  type MailjetContact,
  ManagedEnvelope,
  type ManageContactBody,
  type ManagedContact,
  type PropertyDefinition,
  PropertyItem,
  PropertyRejected,
  type Recipient,
  RecipientItem,
  type Subscription,
  toBulkJob,
  toContact,
  toContactState,
  toDefinition,
  toPairs,
  toRecipient,
  toSubscription
} from "./MailjetShapes.js"
import type { Action, Datatype } from "../Preset/Preset.js"

export type { BulkJob, BulkRejection, ContactList, ContactState, MailjetContact } from "./MailjetShapes.js"
export type { ManageContactBody, ManagedContact, PropertyDefinition, Recipient, Subscription } from "./MailjetShapes.js"
export { PropertyRejected } from "./MailjetShapes.js"
export { allPages, type ErrorDetails, PAGE, readErrorBody } from "./MailjetHttp.js"

type Transient = RateLimited | MailjetUnavailable
/** What a managecontact call fails with. */
export type ManageContactError = Unauthorized | ListNotFound | PropertyMissing | InvalidContact | Transient

export class MailjetClient extends Context.Tag("signal-mailjet/MailjetClient")<MailjetClient, {
  readonly manageContact: (
    body: ManageContactBody
  ) => Effect.Effect<ManagedContact, Unauthorized | ListNotFound | PropertyMissing | InvalidContact | Transient>
  /**
   * `manageContact` for the per-event path, without an Effect per request: `done` is called once
   * with the usual answer (a 2xx whose body checks by hand), or else with the Effect that reads the
   * answer (statuses, a 404's look-up of the list, a transport failure), unless `cancel` came first.
   * Optional, so that a client a host makes itself still fits: without it, every event takes the
   * send loop (`manageContact`).
   */
  readonly manageContactNow?: (
    body: ManageContactBody,
    done: (answer: ManagedContact | Effect.Effect<ManagedContact, ManageContactError>) => void
  ) => { readonly cancel: () => void }
  /** Starts a bulk job on the configured list: its JobID. `contacts` as objects, or their JSON array written (contactEntry). */
  readonly manageManyContacts: (
    action: Action,
    contacts: ReadonlyArray<Omit<ManageContactBody, "Action">> | Uint8Array
  ) => Effect.Effect<number, Unauthorized | ListNotFound | BulkRefused | Transient>
  /** One poll of a bulk job. */
  readonly bulkJob: (jobId: number) => Effect.Effect<BulkJob, Unauthorized | Transient>
  /** The contacts a finished job refused, read from its error file. */
  readonly bulkRejections: (errorFile: string) => Effect.Effect<ReadonlyArray<BulkRejection>, Unauthorized | Transient>
  readonly getList: Effect.Effect<ContactList, Unauthorized | ListNotFound | Transient>
  /** Two reads: the contact's `listrecipient` in the configured list, and its `contactdata`. */
  readonly contactState: (email: string) => Effect.Effect<ContactState, Unauthorized | Transient>
  readonly listProperties: Effect.Effect<ReadonlyArray<PropertyDefinition>, Unauthorized | Transient>
  readonly defineProperty: (
    name: string,
    datatype: Datatype
  ) => Effect.Effect<PropertyDefinition, Unauthorized | PropertyRejected | Transient>
  /** None when Mailjet has no contact with this address (or would refuse the address). */
  readonly getContact: (email: string) => Effect.Effect<Option.Option<MailjetContact>, Unauthorized | Transient>
  /** GDPR erasure by ID (`DELETE /v4/contacts/{id}`): 200 whether or not the ID exists (recorded), so look it up first. */
  readonly eraseContact: (id: number) => Effect.Effect<void, Unauthorized | Transient>
  /** The contact's property values as Mailjet returns them (text); None when there is no such contact. */
  readonly contactData: (
    email: string
  ) => Effect.Effect<Option.Option<ReadonlyArray<readonly [string, string]>>, Unauthorized | Transient>
  /** The contact's subscription in the configured list; NotInList also when there is no such contact. */
  readonly listRecipient: (email: string) => Effect.Effect<Subscription, Unauthorized | Transient>
  /** One page of the configured list's unsubscribed recipients; step `offset` until a page is short. */
  readonly unsubscribedRecipients: (
    page: { readonly offset: number; readonly limit: number }
  ) => Effect.Effect<ReadonlyArray<Recipient>, Unauthorized | Transient>
  /** One page of the contacts in the configured list (`contact?ContactsList=`): their IDs and emails. */
  readonly contactsInList: (
    page: { readonly offset: number; readonly limit: number }
  ) => Effect.Effect<ReadonlyArray<{ readonly id: number; readonly email: string }>, Unauthorized | Transient>
}>() {
  /** Needs a `MailjetConfig`; keeps its own pool of keep-alive connections to Mailjet (`connections` at most), closed with the layer. */
  static readonly layerWith = (o: { readonly connections?: number }) => Layer.scoped(MailjetClient, Effect.suspend(() => make(o.connections)))
  static readonly layer = MailjetClient.layerWith({})
}

const make = (connections: number | undefined) => Effect.gen(function*() {
  const { decodeOk, deleteV4, errorDetails, getV3, listId, reply, request, requestNow, send, unavailable } = yield* makeTransport(yield* MailjetConfig, connections)

  const decodeList = decodeOk(envelope(ListItem))
  const getList = send<ContactList, ListNotFound>(request("GET", `/contactslist/${listId}`), {
    ok: (res) =>
      Effect.flatMap(decodeList(res), (env) => {
        const item = env.Data[0]
        if (item === undefined) return Effect.fail(new ListNotFound({ listId }))
        // A deleted list still reads 200 (recorded), but takes no contacts.
        if (item.IsDeleted === true) return Effect.fail(new ListNotFound({ listId, deleted: true }))
        return Effect.succeed<ContactList>({ id: item.ID, name: item.Name, subscriberCount: item.SubscriberCount })
      }),
    status: (res) =>
      res.status === 404
        ? Effect.fail(new ListNotFound({ listId }))
        : Effect.fail(unavailable(`HTTP ${res.status}: ${errorDetails(res).message}`))
  })

  const manageContactPath = `/contactslist/${listId}/managecontact`
  // Built once: a schema made per call was compiled into a new parser per call.
  const decodeManaged = decodeOk(ManagedEnvelope, checkManaged)
  const managed = reply<ManagedContact, ListNotFound | PropertyMissing | InvalidContact | Unauthorized | Transient>({
      ok: (res) =>
        Effect.map(decodeManaged(res), (env): ManagedContact => ({
          status: res.status,
          contactId: env.Data[0]?.ContactID
        })),
      status: (res) => {
        // A 404 here also comes from proxies (mailjet-apiv3-nodejs#245): only the list itself
        // missing stops the run; otherwise this attempt failed and the event is tried again.
        if (res.status === 404) {
          return Effect.flatMap(getList, () =>
            Effect.fail(unavailable(`HTTP 404 from managecontact while list ${listId} exists: ${excerpt(res.text)}`)))
        }
        const d = errorDetails(res)
        const properties = res.status === 400 ? d.onlyProperties : undefined
        return Effect.fail(
          d.undefinedProperties[0] !== undefined
            ? new PropertyMissing({ property: d.undefinedProperties[0], ...(properties ? { properties } : {}) })
            : new InvalidContact({
              detail: res.status === 400 ? d.message : `HTTP ${res.status}: ${d.message}`,
              ...(properties ? { properties } : {})
            })
        )
      }
    })
  const manageContact = (body: ManageContactBody): Effect.Effect<ManagedContact, ManageContactError> =>
    Effect.flatMap(request("POST", manageContactPath, body), managed)
  const manageContactNow = (
    body: ManageContactBody,
    done: (answer: ManagedContact | Effect.Effect<ManagedContact, ManageContactError>) => void
  ) =>
    requestNow("POST", manageContactPath, body, (res) => {
      if (res instanceof MailjetUnavailable) return done(Effect.fail(res))
      // The usual answer read here, the same way `decodeManaged` reads it first.
      const checked = res.status >= 200 && res.status < 300 ? checkManaged(parseJson(res.text)) : undefined
      done(checked === undefined ? managed(res) : { status: res.status, contactId: checked.Data[0]?.ContactID })
    })

  const manyPath = `/contactslist/${listId}/managemanycontacts`
  const decodeJobId = decodeOk(envelope(Schema.Struct({ JobID: Schema.Number })))
  const manageManyContacts = (action: Action, contacts: ReadonlyArray<Omit<ManageContactBody, "Action">> | Uint8Array) =>
    // The body is made as the call is tried, not while it waits for the call budget.
    send<number, ListNotFound | BulkRefused | Unauthorized | Transient>(Effect.suspend(() => request("POST", manyPath, contacts instanceof Uint8Array ? bulkBody(action, contacts) : { Action: action, Contacts: contacts })), {
      ok: (res) =>
        Effect.flatMap(decodeJobId(res), (env) =>
          env.Data[0] === undefined ? Effect.fail(unavailable("a bulk call answered without a JobID")) : Effect.succeed(env.Data[0].JobID)),
      status: (res) =>
        res.status === 404
          ? Effect.flatMap(getList, () => Effect.fail(unavailable(`HTTP 404 from managemanycontacts: ${excerpt(res.text)}`)))
          : Effect.fail(new BulkRefused({ detail: `HTTP ${res.status}: ${errorDetails(res).message}` }))
    })

  const decodeJob = decodeOk(envelope(BulkJobItem))
  const bulkJob = (jobId: number) =>
    send<BulkJob, never>(request("GET", `${manyPath}/${jobId}`), {
      ok: (res) =>
        Effect.flatMap(decodeJob(res), (env) =>
          env.Data[0] === undefined ? Effect.fail(unavailable(`bulk job ${jobId} read empty`)) : Effect.succeed(toBulkJob(env.Data[0]))),
      status: (res) =>
        res.status === 404 && isMailjetNotFound(parseJson(res.text))
          ? Effect.succeed<BulkJob>({ status: "Unknown", detail: "Unknown", error: `HTTP 404: ${errorDetails(res).message}`, errorFile: undefined })
          : Effect.fail(unavailable(`HTTP ${res.status} reading bulk job ${jobId}: ${errorDetails(res).message}`))
    })

  const bulkRejections = (errorFile: string) =>
    send<ReadonlyArray<BulkRejection>, never>(getV3(errorFile), {
      ok: (res) => {
        const rejected = readErrorFile(res.text)
        return rejected === undefined ? Effect.fail(unavailable("a bulk job's error file is not in the expected format")) : Effect.succeed(rejected)
      },
      status: (res) => Effect.fail(unavailable(`HTTP ${res.status} reading a bulk job's error file`))
    })

  const decodeProperties = decodeOk(envelope(PropertyItem))
  const listProperties = allPages(({ limit, offset }) =>
    send(request("GET", `/contactmetadata?Limit=${limit}&Offset=${offset}`), {
      ok: (res) => Effect.map(decodeProperties(res), (env) => env.Data.map(toDefinition)),
      status: (res) => Effect.fail(unavailable(`HTTP ${res.status}: ${errorDetails(res).message}`))
    })
  )

  const defineProperty = (name: string, datatype: Datatype) =>
    send<PropertyDefinition, PropertyRejected>(
      request("POST", "/contactmetadata", { Datatype: datatype, Name: name, NameSpace: "static" }),
      {
        ok: (res) =>
          Effect.flatMap(decodeProperties(res), (env) =>
            env.Data[0] === undefined
              ? Effect.fail(unavailable("empty reply to a property definition"))
              : Effect.succeed(toDefinition(env.Data[0]))),
        status: (res) => Effect.fail(new PropertyRejected({ property: name, detail: errorDetails(res).message }))
      }
    )

  /** A read where 404 (and 400, an address Mailjet refuses) mean "no such thing". */
  const read = <A, I>(path: string, schema: Schema.Schema<A, I>) => {
    const decode = decodeOk(envelope(schema))
    return send(request("GET", path), {
      ok: (res) => Effect.map(decode(res), (env) => Option.fromNullable(env.Data[0])),
      status: (res) =>
        res.status === 404 || res.status === 400
          ? Effect.succeed(Option.none<A>())
          : Effect.fail(unavailable(`HTTP ${res.status}: ${errorDetails(res).message}`))
    })
  }
  const readPage = <A, I>(path: string, schema: Schema.Schema<A, I>) =>
    send(request("GET", path), {
      ok: (res) => Effect.map(decodeOk(envelope(schema))(res), (env) => env.Data),
      status: (res) => Effect.fail(unavailable(`HTTP ${res.status}: ${errorDetails(res).message}`))
    })

  const getContact = (email: string) =>
    Effect.map(read(`/contact/${encodeURIComponent(email)}`, ContactItem), Option.map(toContact))

  const eraseContact = (id: number) =>
    send<void, never>(deleteV4(`contacts/${id}`), {
      ok: () => Effect.void,
      status: (res) => Effect.fail(unavailable(`HTTP ${res.status} erasing contact ${id}: ${errorDetails(res).message}`))
    })

  const contactData = (email: string) =>
    Effect.map(read(`/contactdata/${encodeURIComponent(email)}`, ContactDataItem), Option.map(toPairs))

  // Filters as node-mailjet types them for listrecipient (ContactsList, ContactEmail, Unsub).
  const listRecipient = (email: string) =>
    Effect.map(read(`/listrecipient?ContactsList=${listId}&ContactEmail=${encodeURIComponent(email)}`, RecipientItem), toSubscription)

  const unsubscribedRecipients = (page: { readonly offset: number; readonly limit: number }) =>
    Effect.map(
      readPage(`/listrecipient?ContactsList=${listId}&Unsub=true&Limit=${page.limit}&Offset=${page.offset}`, RecipientItem),
      (rows) => rows.map(toRecipient)
    )

  const contactsInList = (page: { readonly offset: number; readonly limit: number }) =>
    Effect.map(
      readPage(`/contact?ContactsList=${listId}&Limit=${page.limit}&Offset=${page.offset}`, ContactItem),
      (rows) => rows.map((c) => ({ id: c.ID, email: c.Email }))
    )

  const contactState = (email: string) =>
    Effect.map(Effect.all([listRecipient(email), contactData(email)]), ([subscription, data]) => toContactState(subscription, data))

  return MailjetClient.of({
    manageContact,
    manageContactNow,
    manageManyContacts,
    bulkJob,
    bulkRejections,
    getList,
    contactState,
    listProperties,
    defineProperty,
    getContact,
    eraseContact,
    contactData,
    listRecipient,
    unsubscribedRecipients,
    contactsInList
  })
})
