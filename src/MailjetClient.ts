/**
 * The Mailjet Contacts API (v3 REST) as typed calls. One attempt per call, bounded by the
 * configured timeout: retrying and pacing belong to delivery, which sees every lane at once.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import { Cause, Context, Duration, Effect, FiberId, Layer, Schema } from "effect"
import { MailjetConfig } from "./MailjetConfig.js"
import {
  InvalidContact,
  ListNotFound,
  MailjetUnavailable,
  PropertyMissing,
  RateLimited,
  Unauthorized
} from "./MailjetError.js"
import type { Action, Datatype } from "./Preset.js"
import { Datatype as DatatypeSchema } from "./Preset.js"

export interface ManageContactBody {
  readonly Email: string
  readonly Name?: string
  readonly Action: Action
  readonly Properties?: Readonly<Record<string, string | number | boolean | null>>
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

export class MailjetClient extends Context.Tag("signal-mailjet/MailjetClient")<MailjetClient, {
  readonly manageContact: (
    body: ManageContactBody
  ) => Effect.Effect<ManagedContact, Unauthorized | ListNotFound | PropertyMissing | InvalidContact | Transient>
  readonly getList: Effect.Effect<ContactList, Unauthorized | ListNotFound | Transient>
  readonly listProperties: Effect.Effect<ReadonlyArray<PropertyDefinition>, Unauthorized | Transient>
  readonly defineProperty: (
    name: string,
    datatype: Datatype
  ) => Effect.Effect<PropertyDefinition, Unauthorized | PropertyRejected | Transient>
}>() {
  /** Needs an `HttpClient` (the process uses undici with keep-alive) and a `MailjetConfig`. */
  static readonly layer = Layer.effect(MailjetClient, Effect.suspend(() => make))
}

const envelope = <A, I>(item: Schema.Schema<A, I>) =>
  Schema.Struct({ Count: Schema.Number, Data: Schema.Array(item), Total: Schema.Number })

const ManagedItem = Schema.Struct({ ContactID: Schema.optional(Schema.Number) })
const ListItem = Schema.Struct({
  ID: Schema.Number,
  Name: Schema.String,
  SubscriberCount: Schema.optional(Schema.Number)
})
const PropertyItem = Schema.Struct({ ID: Schema.Number, Name: Schema.String, Datatype: DatatypeSchema })

/** v3 error envelope; `ErrorInfo` is a string, or an object for field validation errors. */
const ErrorBody = Schema.Struct({
  ErrorMessage: Schema.optional(Schema.String),
  ErrorInfo: Schema.optional(Schema.Unknown)
})

export interface ErrorDetails {
  readonly message: string
  /** Properties Mailjet says are not defined, in its order. */
  readonly undefinedProperties: ReadonlyArray<string>
}

/** Reads Mailjet's 400 body; tolerant, since only the docs show the property error's shape. */
export const readErrorBody = (body: unknown): ErrorDetails => {
  const decoded = Schema.decodeUnknownOption(ErrorBody)(body)
  if (decoded._tag === "None") return { message: "unreadable error body", undefinedProperties: [] }
  const { ErrorInfo, ErrorMessage } = decoded.value
  const parts: Array<string> = []
  const undefinedProperties: Array<string> = []
  if (typeof ErrorInfo === "object" && ErrorInfo !== null) {
    for (const [field, info] of Object.entries(ErrorInfo)) {
      const entries = Array.isArray(info) ? info : [info]
      for (const entry of entries) {
        if (typeof entry === "object" && entry !== null) {
          for (const [name, text] of Object.entries(entry)) {
            if (typeof text === "string" && /not defined/i.test(text)) undefinedProperties.push(name)
            parts.push(`${name}: ${String(text)}`)
          }
        } else parts.push(`${field}: ${String(entry)}`)
      }
    }
  } else if (typeof ErrorInfo === "string" && ErrorInfo !== "") parts.push(ErrorInfo)
  const message = [ErrorMessage ?? "Bad request", ...parts].join("; ")
  return { message, undefinedProperties }
}

/**
 * The tracer and clock a program has when it installs none. The default tracer keeps no spans, so
 * under it requests skip the HTTP client's span (attributes, redacted headers: about 30 µs of CPU
 * per request, measured); a host that installs a tracer (OpenTelemetry) gets every span as before.
 */
const defaultTracer = Effect.runSync(Effect.tracer)
const defaultClock = Effect.runSync(Effect.clock)

/**
 * `Effect.timeout` for about a third of its cost on the live clock (measured: 85 → 28 µs of CPU
 * per request): one fork and one timer instead of a race of two fibers, one of them sleeping. At
 * the deadline the request's fiber is interrupted (undici aborts the request) and the call fails
 * with a `TimeoutException`, as with `Effect.timeout`. Under another clock (a TestClock) it is
 * `Effect.timeout`, so virtual time still decides.
 */
const timeoutAfter = (duration: Duration.Duration) => {
  const ms = Duration.toMillis(duration)
  return <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | Cause.TimeoutException, R> =>
    Effect.flatMap(Effect.clock, (clock) =>
      clock !== defaultClock
        ? Effect.timeout(self, duration)
        : Effect.flatMap(Effect.fork(self), (fiber) =>
          Effect.async<A, E | Cause.TimeoutException>((resume) => {
            let settled = false
            const timer = setTimeout(() => {
              if (settled) return
              settled = true
              fiber.unsafeInterruptAsFork(FiberId.none)
              resume(Effect.fail(new Cause.TimeoutException(`Operation timed out after '${Duration.format(duration)}'`)))
            }, ms)
            fiber.addObserver((exit) => {
              if (settled) return
              settled = true
              clearTimeout(timer)
              resume(exit)
            })
            return Effect.sync(() => {
              if (settled) return
              settled = true
              clearTimeout(timer)
              fiber.unsafeInterruptAsFork(FiberId.none)
            })
          })))
}

const make = Effect.gen(function*() {
  const config = yield* MailjetConfig
  const listId = config.listId
  const root = new URL("/v3/REST", config.baseUrl).href
  const prepareRequest = (req: HttpClientRequest.HttpClientRequest) =>
    req.pipe(
      HttpClientRequest.prependUrl(root),
      HttpClientRequest.basicAuth(config.apiKey, config.secretKey),
      HttpClientRequest.acceptJson
    )
  const timed = HttpClient.transformResponse(yield* HttpClient.HttpClient, timeoutAfter(config.timeout))
  // Trace ids are ours, not Mailjet's business.
  const traced = HttpClient.withTracerPropagation(timed, false)
  // With no span there is nothing to propagate.
  const untraced = HttpClient.withTracerDisabledWhen(timed, () => true)
  /** Takes a request made by `prepareRequest`. */
  const execute = (request: HttpClientRequest.HttpClientRequest) =>
    Effect.flatMap(Effect.tracer, (tracer) => (tracer === defaultTracer ? untraced : traced).execute(request))

  const unavailable = (detail: string) => new MailjetUnavailable({ detail })

  /**
   * Sends one request (made by `prepareRequest`); the statuses every endpoint shares are mapped
   * here, the rest by `onStatus`.
   */
  const send = <A, E>(
    request: HttpClientRequest.HttpClientRequest,
    on: {
      readonly ok: (res: HttpClientResponse.HttpClientResponse) => Effect.Effect<A, E | MailjetUnavailable>
      readonly status: (
        res: HttpClientResponse.HttpClientResponse
      ) => Effect.Effect<never, E | MailjetUnavailable>
    }
  ): Effect.Effect<A, E | Unauthorized | Transient> =>
    execute(request).pipe(
      Effect.catchTags({
        RequestError: (e: HttpClientError.RequestError) => Effect.fail(unavailable(`${e.reason.toLowerCase()} error: ${e.cause instanceof Error ? e.cause.message : e.description ?? "request failed"}`)),
        ResponseError: (e: HttpClientError.ResponseError) => Effect.fail(unavailable(`response error: ${e.reason}`)),
        TimeoutException: () => Effect.fail(unavailable(`no answer within ${Duration.format(config.timeout)}`))
      }),
      Effect.flatMap((res): Effect.Effect<A, E | Unauthorized | Transient> => {
        const s = res.status
        if (s >= 200 && s < 300) return on.ok(res)
        // 401 and 429 bodies are not JSON (empty, or an HTML page): drain them unread.
        if (s === 401) return Effect.zipRight(Effect.ignore(res.text), Effect.fail(new Unauthorized()))
        if (s === 429) return Effect.zipRight(Effect.ignore(res.text), Effect.fail(new RateLimited()))
        if (s >= 500 || s === 408) return Effect.zipRight(Effect.ignore(res.text), Effect.fail(unavailable(`HTTP ${s}`)))
        return on.status(res)
      })
    )

  /** `HttpClientResponse.schemaBodyJson`, with the parser made once rather than looked up per call. */
  const decodeOk = <A, I>(schema: Schema.Schema<A, I>) => {
    const decode = Schema.decodeUnknownEither(schema)
    return (res: HttpClientResponse.HttpClientResponse) =>
      Effect.flatMap(res.json, decode).pipe(
        Effect.mapError(() => unavailable(`HTTP ${res.status} with a body that is not a Mailjet envelope`))
      )
  }

  /** A 4xx body as JSON when it is JSON; anything else is summarised by status. */
  const errorDetails = (res: HttpClientResponse.HttpClientResponse) =>
    res.text.pipe(
      Effect.map((text): ErrorDetails => {
        try {
          return readErrorBody(JSON.parse(text))
        } catch {
          return { message: `HTTP ${res.status}`, undefinedProperties: [] }
        }
      }),
      Effect.orElseSucceed((): ErrorDetails => ({ message: `HTTP ${res.status}`, undefinedProperties: [] }))
    )

  const manageContactPath = `/contactslist/${listId}/managecontact`
  // Built once: a schema made per call was compiled into a new parser per call.
  const decodeManaged = decodeOk(envelope(ManagedItem))
  // URL and headers set once: only the body differs from call to call.
  const manageContactRequest = prepareRequest(HttpClientRequest.post(manageContactPath))
  const manageContact = (body: ManageContactBody) =>
    send<ManagedContact, ListNotFound | PropertyMissing | InvalidContact>(
      HttpClientRequest.bodyUnsafeJson(manageContactRequest, body),
      {
      ok: (res) =>
        Effect.map(decodeManaged(res), (env): ManagedContact => ({
          status: res.status,
          contactId: env.Data[0]?.ContactID
        })),
      status: (res) =>
        res.status === 404
          ? Effect.zipRight(Effect.ignore(res.text), Effect.fail(new ListNotFound({ listId })))
          : Effect.flatMap(errorDetails(res), (d) =>
            Effect.fail(
              d.undefinedProperties[0] !== undefined
                ? new PropertyMissing({ property: d.undefinedProperties[0] })
                : new InvalidContact({ detail: res.status === 400 ? d.message : `HTTP ${res.status}: ${d.message}` })
            ))
    })

  const decodeList = decodeOk(envelope(ListItem))
  const getList = send<ContactList, ListNotFound>(prepareRequest(HttpClientRequest.get(`/contactslist/${listId}`)), {
    ok: (res) =>
      Effect.flatMap(decodeList(res), (env) => {
        const item = env.Data[0]
        return item === undefined
          ? Effect.fail(new ListNotFound({ listId }))
          : Effect.succeed<ContactList>({ id: item.ID, name: item.Name, subscriberCount: item.SubscriberCount })
      }),
    status: (res) =>
      res.status === 404
        ? Effect.zipRight(Effect.ignore(res.text), Effect.fail(new ListNotFound({ listId })))
        : Effect.flatMap(errorDetails(res), (d) => Effect.fail(unavailable(`HTTP ${res.status}: ${d.message}`)))
  })

  const toDefinition = (p: typeof PropertyItem.Type): PropertyDefinition => ({
    id: p.ID,
    name: p.Name,
    datatype: p.Datatype
  })

  const PAGE = 1000
  const decodeProperties = decodeOk(envelope(PropertyItem))
  const propertiesPage = (offset: number) =>
    send(
      HttpClientRequest.get("/contactmetadata").pipe(
        HttpClientRequest.setUrlParams({ Limit: String(PAGE), Offset: String(offset) }),
        prepareRequest
      ),
      {
        ok: decodeProperties,
        status: (res) => Effect.flatMap(errorDetails(res), (d) => Effect.fail(unavailable(`HTTP ${res.status}: ${d.message}`)))
      }
    )

  // Paged, as Mailjet advises: step Offset until a short page.
  const listProperties = Effect.gen(function*() {
    const all: Array<PropertyDefinition> = []
    for (let offset = 0;; offset += PAGE) {
      const page = yield* propertiesPage(offset)
      all.push(...page.Data.map(toDefinition))
      if (page.Data.length < PAGE) return all
    }
  })

  const defineProperty = (name: string, datatype: Datatype) =>
    send<PropertyDefinition, PropertyRejected>(
      HttpClientRequest.post("/contactmetadata").pipe(
        HttpClientRequest.bodyUnsafeJson({ Datatype: datatype, Name: name, NameSpace: "static" }),
        prepareRequest
      ),
      {
        ok: (res) =>
          Effect.flatMap(decodeProperties(res), (env) =>
            env.Data[0] === undefined
              ? Effect.fail(unavailable("empty reply to a property definition"))
              : Effect.succeed(toDefinition(env.Data[0]))),
        status: (res) =>
          Effect.flatMap(errorDetails(res), (d) => Effect.fail(new PropertyRejected({ property: name, detail: d.message })))
      }
    )

  return MailjetClient.of({ manageContact, getList, listProperties, defineProperty })
})
