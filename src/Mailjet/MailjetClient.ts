/**
 * The Mailjet Contacts API (v3 REST) as typed calls. One attempt per call, bounded by the
 * configured timeout: retrying and pacing belong to delivery, which sees every lane at once.
 * Longer than 300 lines because every call shares one transport and one status mapping; the
 * transport (`exchange`) is the part to move out next.
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { type Dispatcher, Pool } from "undici"
import { maskEmails } from "../Domain/Mask.js"
import { MailjetConfig } from "./MailjetConfig.js"
import {
  BulkRefused,
  InvalidContact,
  ListNotFound,
  MailjetUnavailable,
  UNREACHABLE_CODES,
  PropertyMissing,
  RateLimited,
  Unauthorized
} from "./MailjetError.js"
import type { Action, Datatype } from "../Preset/Preset.js"
import { Datatype as DatatypeSchema } from "../Preset/Preset.js"

export interface ManageContactBody {
  readonly Email: string
  readonly Name?: string
  readonly Action: Action
  readonly Properties?: Readonly<Record<string, string | number | boolean | null>>
}

/** What Mailjet holds for one contact: what a replay must not undo (see ReplayGuard). */
export interface ContactState {
  /** Mailjet knows the contact at all (in any list, or none). */
  readonly exists: boolean
  /** The contact's subscription in the configured list; `undefined` when it is not in the list. */
  readonly membership: "subscribed" | "unsubscribed" | undefined
  /** The contact's property values, by name (contactdata gives them as text). */
  readonly properties: Readonly<Record<string, unknown>>
}

export interface ManagedContact {
  readonly status: number
  readonly contactId: number | undefined
}

export interface ContactList {
  readonly id: number
  readonly name: string
  readonly subscriberCount: number | undefined
}

export interface PropertyDefinition {
  readonly id: number
  readonly name: string
  readonly datatype: Datatype
}

/** A contact as Mailjet holds it (`GET /contact/{email}`). */
export interface MailjetContact {
  readonly id: number
  readonly email: string
  readonly name: string
  readonly createdAt: string
}

/** A contact's place in the configured list (`listrecipient`); times are Mailjet's, "" when unset. */
export type Subscription =
  | { readonly _tag: "Subscribed"; readonly subscribedAt: string }
  | { readonly _tag: "Unsubscribed"; readonly subscribedAt: string; readonly unsubscribedAt: string }
  | { readonly _tag: "NotInList" }

export interface Recipient {
  readonly contactId: number
  readonly subscribedAt: string
  readonly unsubscribedAt: string
}

/** Mailjet refused to define a property (a bad name, or one that exists under another type). */
export class PropertyRejected extends Schema.TaggedError<PropertyRejected>()("PropertyRejected", {
  property: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `Mailjet refused to define the contact property "${this.property}": ${this.detail}. Create it by hand in Mailjet (Contacts > Contact properties).`
  }
}

type Transient = RateLimited | MailjetUnavailable

/** A bulk job as a poll reads it; any status but the three final ones is still running. */
export interface BulkJob {
  /** `Unknown`: Mailjet itself answered 404 for the job, so it can never land (a forged or purged ID). */
  readonly status: "Running" | "Completed" | "Error" | "Abort" | "Unknown"
  /** Mailjet's own status name, for the log. */
  readonly detail: string
  readonly error: string
  /** Relative to `/v3/`, when the job has rejected contacts. */
  readonly errorFile: string | undefined
}

/** A contact a bulk job refused, with the error managecontact would have given. */
export interface BulkRejection {
  readonly email: string
  readonly error: PropertyMissing | InvalidContact
}

// ---- UNCONFIRMED live shapes of bulk jobs, all here (mailjet-api.md §4) ----------------------
// The poll reply's fields are the GUIDE's; only Status and the error fields are read, so a changed
// set of statuses only keeps a job "running" until its deadline. The error file's format is a
// guess: an array of `{Email, ErrorMessage, ErrorInfo}`, ErrorInfo as in managecontact's 400 body.
const BulkJobItem = Schema.Struct({
  Status: Schema.String,
  Error: Schema.optional(Schema.NullOr(Schema.String)),
  ErrorFile: Schema.optional(Schema.NullOr(Schema.String))
})
const BulkErrorEntry = Schema.Struct({
  Email: Schema.String,
  ErrorMessage: Schema.optional(Schema.String),
  ErrorInfo: Schema.optional(Schema.Unknown)
})
const jobStatus = (s: string): BulkJob["status"] => s === "Completed" || s === "Error" || s === "Abort" ? s : "Running"
// Mailjet's own 404 envelope (VCR `Object not found`); a proxy's 404 page is not proof of anything.
const MailjetNotFound = Schema.Struct({ ErrorMessage: Schema.String, StatusCode: Schema.Literal(404) })
const isMailjetNotFound = Schema.is(MailjetNotFound)
// ---------------------------------------------------------------------------------------------

export class MailjetClient extends Context.Tag("signal-mailjet/MailjetClient")<MailjetClient, {
  readonly manageContact: (
    body: ManageContactBody
  ) => Effect.Effect<ManagedContact, Unauthorized | ListNotFound | PropertyMissing | InvalidContact | Transient>
  /** Starts a bulk job on the configured list: its JobID. */
  readonly manageManyContacts: (
    action: Action,
    contacts: ReadonlyArray<Omit<ManageContactBody, "Action">>
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
  /** Needs a `MailjetConfig`; keeps its own pool of keep-alive connections to Mailjet, closed with the layer. */
  static readonly layer = Layer.scoped(MailjetClient, Effect.suspend(() => make))
}

const envelope = <A, I>(item: Schema.Schema<A, I>) =>
  Schema.Struct({ Count: Schema.Number, Data: Schema.Array(item), Total: Schema.Number })

const ManagedItem = Schema.Struct({ ContactID: Schema.optional(Schema.Number) })
const ListItem = Schema.Struct({
  ID: Schema.Number,
  Name: Schema.String,
  IsDeleted: Schema.optional(Schema.Boolean),
  SubscriberCount: Schema.optional(Schema.Number)
})
const PropertyItem = Schema.Struct({ ID: Schema.Number, Name: Schema.String, Datatype: DatatypeSchema })
const ContactItem = Schema.Struct({
  ID: Schema.Number,
  Email: Schema.String,
  Name: Schema.String,
  CreatedAt: Schema.String
})
// Values are text in every recording; anything else is shown as JSON rather than refused.
const ContactDataItem = Schema.Struct({
  Data: Schema.Array(Schema.Struct({ Name: Schema.String, Value: Schema.Unknown }))
})
const RecipientItem = Schema.Struct({
  ContactID: Schema.Number,
  IsUnsubscribed: Schema.Boolean,
  SubscribedAt: Schema.String,
  UnsubscribedAt: Schema.String
})

/** v3 error envelope; `ErrorInfo` is a string, or an object for field validation errors. */
const ErrorBody = Schema.Struct({
  ErrorMessage: Schema.optional(Schema.String),
  ErrorInfo: Schema.optional(Schema.Unknown)
})

export interface ErrorDetails {
  readonly message: string
  /** Properties Mailjet says are not defined, in its order. */
  readonly undefinedProperties: ReadonlyArray<string>
  /** Every property Mailjet refused, when nothing but properties was refused. */
  readonly onlyProperties: ReadonlyArray<string> | undefined
}

/** Reads Mailjet's 400 body; tolerant, since only the docs show the property error's shape. */
export const readErrorBody = (body: unknown): ErrorDetails => {
  const decoded = Schema.decodeUnknownOption(ErrorBody)(body)
  if (decoded._tag === "None") return { message: "unreadable error body", undefinedProperties: [], onlyProperties: undefined }
  const { ErrorInfo, ErrorMessage } = decoded.value
  const parts: Array<string> = []
  const undefinedProperties: Array<string> = []
  const rejected: Array<string> = []
  let otherProblems = typeof ErrorInfo === "string" && ErrorInfo !== ""
  if (typeof ErrorInfo === "object" && ErrorInfo !== null) {
    for (const [field, info] of Object.entries(ErrorInfo)) {
      const entries = Array.isArray(info) ? info : [info]
      for (const entry of entries) {
        if (typeof entry === "object" && entry !== null) {
          for (const [name, text] of Object.entries(entry)) {
            if (typeof text === "string" && /not defined/i.test(text)) undefinedProperties.push(name)
            if (field === "Properties") rejected.push(name)
            else otherProblems = true
            parts.push(`${name}: ${String(text)}`)
          }
        } else {
          otherProblems = true
          parts.push(`${field}: ${String(entry)}`)
        }
      }
    }
  } else if (typeof ErrorInfo === "string" && ErrorInfo !== "") parts.push(ErrorInfo)
  // Mailjet quotes the address it refuses, and the message ends up in outcome lines and logs.
  const message = maskEmails([ErrorMessage ?? "Bad request", ...parts].join("; "))
  return { message, undefinedProperties, onlyProperties: !otherProblems && rejected.length > 0 ? rejected : undefined }
}

/** A body's JSON, or `undefined` when it is not JSON (JSON itself has no `undefined`). */
const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

const ServerErrorBody = Schema.Struct({ ErrorIdentifier: Schema.String })
const decodeServerError = Schema.decodeUnknownOption(ServerErrorBody)

/** A 5xx summarised, keeping the `ErrorIdentifier` GUID of Mailjet's 500 body: its support asks for it. */
const serverError = (res: Reply): string => {
  const body = decodeServerError(parseJson(res.text))
  return body._tag === "Some" ? `HTTP ${res.status}, ErrorIdentifier ${body.value.ErrorIdentifier}` : `HTTP ${res.status}`
}

/** A reply body short enough for a reason line: HTML from a proxy is mostly markup. */
const excerpt = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat === "" ? "empty body" : flat.length > 160 ? `${flat.slice(0, 160)}…` : flat
}

/** One HTTP exchange, its body read whole: every Mailjet reply is small. */
interface Reply {
  readonly status: number
  readonly text: string
}

/**
 * One request on undici's dispatcher API, the layer `fetch` and `request` are built on, without
 * their streams, AbortController or header objects: `@effect/platform`'s HttpClient on undici cost
 * more CPU per request than all the rest of an event's work (measured, see BENCHMARKS.md).
 * `timeoutMs` bounds the whole exchange with a real timer, not Effect's Clock: a race per request
 * would cost two fibers, and a timeout is about the wire, which virtual time does not move.
 * Interruption aborts the request.
 */
const exchange = (
  pool: Pool,
  options: Dispatcher.DispatchOptions,
  timeoutMs: number,
  onTimeout: () => MailjetUnavailable,
  origin: string
): Effect.Effect<Reply, MailjetUnavailable> =>
  Effect.async<Reply, MailjetUnavailable>((resume) => {
    let settled = false
    let controller: Dispatcher.DispatchController | undefined
    // An abort wanted before undici starts the request (it waits in the pool's queue) is done when it starts.
    let abortWith: Error | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    let status = 0
    const chunks: Array<Buffer> = []
    /** True for the first caller only: the exchange ends once. */
    const end = () => {
      if (settled) return false
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      return true
    }
    const settle = (effect: Effect.Effect<Reply, MailjetUnavailable>) => {
      if (end()) resume(effect)
    }
    const abort = (error: Error) => {
      if (controller === undefined) abortWith = error
      else if (!controller.aborted) controller.abort(error)
    }
    pool.dispatch(options, {
      onRequestStart(c) {
        controller = c
        if (abortWith !== undefined) c.abort(abortWith)
      },
      onResponseStart(_c, statusCode) {
        status = statusCode
      },
      onResponseData(_c, chunk) {
        chunks.push(chunk)
      },
      onResponseEnd() {
        settle(Effect.succeed({ status, text: Buffer.concat(chunks).toString("utf8") }))
      },
      onResponseError(_c, error) {
        const code = (error as NodeJS.ErrnoException).code
        settle(Effect.fail(
          new MailjetUnavailable({
            detail: `transport error: ${error.message}`,
            ...(code !== undefined && UNREACHABLE_CODES.has(code) ? { unreachable: origin } : {})
          })
        ))
      }
    })
    if (!settled) {
      timer = setTimeout(() => {
        // Settled first: aborting reports an error of its own, which this one wins over.
        settle(Effect.fail(onTimeout()))
        abort(new Error("timed out"))
      }, timeoutMs)
    }
    return Effect.sync(() => {
      if (end()) abort(new Error("interrupted"))
    })
  })

/** Mailjet's largest page (`Limit`). */
export const PAGE = 1000

/** Every page of a paged read, as Mailjet advises: step `Offset` until a short page. */
export const allPages = <A, E>(
  read: (page: { readonly offset: number; readonly limit: number }) => Effect.Effect<ReadonlyArray<A>, E>
): Effect.Effect<Array<A>, E> =>
  Effect.gen(function*() {
    const all: Array<A> = []
    for (let offset = 0;; offset += PAGE) {
      const page = yield* read({ offset, limit: PAGE })
      all.push(...page)
      if (page.length < PAGE) return all
    }
  })

const make = Effect.gen(function*() {
  const config = yield* MailjetConfig
  const listId = config.listId
  const root = new URL("/v3/REST", config.baseUrl)
  const pool = yield* Effect.acquireRelease(
    Effect.sync(() => new Pool(root.origin)),
    // Nothing is in flight by then unless the program was interrupted: do not wait for it.
    (p) => Effect.promise(() => p.destroy())
  )
  const basePath = root.pathname
  const headers = {
    authorization: `Basic ${Buffer.from(`${Redacted.value(config.apiKey)}:${Redacted.value(config.secretKey)}`).toString("base64")}`,
    accept: "application/json"
  }
  const jsonHeaders = { ...headers, "content-type": "application/json" }
  const timeoutMs = Duration.toMillis(config.timeout)
  const timedOut = () => new MailjetUnavailable({ detail: `no answer within ${Duration.format(config.timeout)}` })

  const unavailable = (detail: string) => new MailjetUnavailable({ detail })

  const request = (method: "GET" | "POST", path: string, body?: unknown) => {
    const options: Dispatcher.DispatchOptions = body === undefined
      ? { method, path: basePath + path, headers }
      : { method, path: basePath + path, headers: jsonHeaders, body: JSON.stringify(body) }
    return exchange(pool, options, timeoutMs, timedOut, root.origin)
  }

  /** Statuses every endpoint shares are mapped here; the rest by `status` (a read may succeed on 404). */
  const send = <A, E>(
    exchanged: Effect.Effect<Reply, MailjetUnavailable>,
    on: {
      readonly ok: (res: Reply) => Effect.Effect<A, E | MailjetUnavailable>
      readonly status: (res: Reply) => Effect.Effect<A, E | MailjetUnavailable>
    }
  ): Effect.Effect<A, E | Unauthorized | Transient> =>
    Effect.flatMap(exchanged, (res): Effect.Effect<A, E | Unauthorized | Transient> => {
      const s = res.status
      if (s >= 200 && s < 300) return on.ok(res)
      // 401 and 429 bodies are not JSON (empty, or an HTML page).
      if (s === 401) return Effect.fail(new Unauthorized())
      if (s === 429) return Effect.fail(new RateLimited())
      if (s >= 500 || s === 408) return Effect.fail(unavailable(serverError(res)))
      return on.status(res)
    })

  /** The reply's envelope, with the parser made once rather than per call. */
  const decodeOk = <A, I>(schema: Schema.Schema<A, I>) => {
    const decode = Schema.decodeUnknownEither(schema)
    return (res: Reply): Effect.Effect<A, MailjetUnavailable> => {
      const decoded = decode(parseJson(res.text))
      return Either.isRight(decoded)
        ? Effect.succeed(decoded.right)
        : Effect.fail(unavailable(`HTTP ${res.status} with a body that is not a Mailjet envelope`))
    }
  }

  /** A 4xx body as JSON when it is JSON; anything else is summarised by status. */
  const errorDetails = (res: Reply): ErrorDetails => {
    const json = parseJson(res.text)
    return json === undefined
      ? { message: `HTTP ${res.status}`, undefinedProperties: [], onlyProperties: undefined }
      : readErrorBody(json)
  }

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
  const decodeManaged = decodeOk(envelope(ManagedItem))
  const manageContact = (body: ManageContactBody) =>
    send<ManagedContact, ListNotFound | PropertyMissing | InvalidContact | Unauthorized | Transient>(
      request("POST", manageContactPath, body),
      {
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
    }
    )

  const manyPath = `/contactslist/${listId}/managemanycontacts`
  const decodeJobId = decodeOk(envelope(Schema.Struct({ JobID: Schema.Number })))
  const manageManyContacts = (action: Action, contacts: ReadonlyArray<Omit<ManageContactBody, "Action">>) =>
    send<number, ListNotFound | BulkRefused | Unauthorized | Transient>(request("POST", manyPath, { Action: action, Contacts: contacts }), {
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
        Effect.flatMap(decodeJob(res), (env) => {
          const job = env.Data[0]
          if (job === undefined) return Effect.fail(unavailable(`bulk job ${jobId} read empty`))
          return Effect.succeed<BulkJob>({
            status: jobStatus(job.Status),
            detail: job.Status,
            error: job.Error ?? "",
            errorFile: job.ErrorFile === undefined || job.ErrorFile === null || job.ErrorFile === "" ? undefined : job.ErrorFile
          })
        }),
      status: (res) =>
        res.status === 404 && isMailjetNotFound(parseJson(res.text))
          ? Effect.succeed<BulkJob>({ status: "Unknown", detail: "Unknown", error: `HTTP 404: ${errorDetails(res).message}`, errorFile: undefined })
          : Effect.fail(unavailable(`HTTP ${res.status} reading bulk job ${jobId}: ${errorDetails(res).message}`))
    })

  const decodeErrorFile = Schema.decodeUnknownEither(Schema.Array(BulkErrorEntry))
  const bulkRejections = (errorFile: string) =>
    send<ReadonlyArray<BulkRejection>, never>(
      exchange(pool, { method: "GET", path: new URL(errorFile.replace(/^\/+/, ""), new URL("/v3/", config.baseUrl)).pathname, headers }, timeoutMs, timedOut, root.origin),
      {
        ok: (res) => {
          const decoded = decodeErrorFile(parseJson(res.text))
          if (Either.isLeft(decoded)) return Effect.fail(unavailable("a bulk job's error file is not in the expected format"))
          return Effect.succeed(decoded.right.map((e): BulkRejection => {
            const d = readErrorBody({ ErrorMessage: e.ErrorMessage, ErrorInfo: e.ErrorInfo })
            const properties = d.onlyProperties
            return {
              email: e.Email,
              error: d.undefinedProperties[0] !== undefined
                ? new PropertyMissing({ property: d.undefinedProperties[0], ...(properties ? { properties } : {}) })
                : new InvalidContact({ detail: d.message, ...(properties ? { properties } : {}) })
            }
          }))
        },
        status: (res) => Effect.fail(unavailable(`HTTP ${res.status} reading a bulk job's error file`))
      }
    )

  const toDefinition = (p: typeof PropertyItem.Type): PropertyDefinition => ({
    id: p.ID,
    name: p.Name,
    datatype: p.Datatype
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
    Effect.map(read(`/contact/${encodeURIComponent(email)}`, ContactItem), Option.map((c): MailjetContact => ({
      id: c.ID,
      email: c.Email,
      name: c.Name,
      createdAt: c.CreatedAt
    })))

  const contactData = (email: string) =>
    Effect.map(
      read(`/contactdata/${encodeURIComponent(email)}`, ContactDataItem),
      Option.map((d) =>
        d.Data.map(({ Name, Value }) => [Name, typeof Value === "string" ? Value : JSON.stringify(Value)] as const)
      )
    )

  const toRecipient = (r: typeof RecipientItem.Type): Recipient => ({
    contactId: r.ContactID,
    subscribedAt: r.SubscribedAt,
    unsubscribedAt: r.UnsubscribedAt
  })

  // Filters as node-mailjet types them for listrecipient (ContactsList, ContactEmail, Unsub).
  const listRecipient = (email: string) =>
    Effect.map(
      read(`/listrecipient?ContactsList=${listId}&ContactEmail=${encodeURIComponent(email)}`, RecipientItem),
      Option.match({
        onNone: (): Subscription => ({ _tag: "NotInList" }),
        onSome: (r): Subscription =>
          r.IsUnsubscribed
            ? { _tag: "Unsubscribed", subscribedAt: r.SubscribedAt, unsubscribedAt: r.UnsubscribedAt }
            : { _tag: "Subscribed", subscribedAt: r.SubscribedAt }
      })
    )

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
    Effect.map(Effect.all([listRecipient(email), contactData(email)]), ([subscription, data]): ContactState => ({
      exists: Option.isSome(data) || subscription._tag !== "NotInList",
      membership: subscription._tag === "NotInList"
        ? undefined
        : subscription._tag === "Subscribed"
        ? "subscribed"
        : "unsubscribed",
      properties: Option.match(data, { onNone: () => ({}), onSome: (d) => Object.fromEntries(d) })
    }))

  return MailjetClient.of({
    manageContact,
    manageManyContacts,
    bulkJob,
    bulkRejections,
    getList,
    contactState,
    listProperties,
    defineProperty,
    getContact,
    contactData,
    listRecipient,
    unsubscribedRecipients,
    contactsInList
  })
})
