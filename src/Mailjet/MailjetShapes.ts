/**
 * The shapes of the Contacts API: what the client's calls take and give, and the schemas its
 * replies are read with. Kept apart from the calls so each reads on its own.
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { InvalidContact, PropertyMissing } from "./MailjetError.js"
import type { Action, Datatype } from "../Preset/Preset.js"
import { Datatype as DatatypeSchema } from "../Preset/Preset.js"

export interface ManageContactBody {
  readonly Email: string
  readonly Name?: string
  readonly Action: Action
  readonly Properties?: Readonly<Record<string, string | number | boolean | null>>
}

/**
 * One contact of a `managemanycontacts` body, as JSON: the update without its `Action` (the job's),
 * written as `JSON.stringify` would write it, key order included.
 */
export const contactEntry = (body: ManageContactBody): string => {
  let json = `{"Email":${JSON.stringify(body.Email)}`
  if (body.Name !== undefined) json += `,"Name":${JSON.stringify(body.Name)}`
  if (body.Properties !== undefined) json += `,"Properties":${JSON.stringify(body.Properties)}`
  return json + "}"
}

/** The update again from its contact as `contactEntry` wrote it (UTF-8) and its action, in the same key order. */
export const entryBody = (entry: Buffer, Action: ManageContactBody["Action"]): ManageContactBody => {
  const { Email, Name, Properties } = JSON.parse(entry.toString("utf8")) as Omit<ManageContactBody, "Action">
  return { Email, ...(Name === undefined ? {} : { Name }), Action, ...(Properties === undefined ? {} : { Properties }) }
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
export const BulkJobItem = Schema.Struct({
  Status: Schema.String,
  Error: Schema.optional(Schema.NullOr(Schema.String)),
  ErrorFile: Schema.optional(Schema.NullOr(Schema.String))
})
export const BulkErrorEntry = Schema.Struct({
  Email: Schema.String,
  ErrorMessage: Schema.optional(Schema.String),
  ErrorInfo: Schema.optional(Schema.Unknown)
})
export const jobStatus = (s: string): BulkJob["status"] => s === "Completed" || s === "Error" || s === "Abort" ? s : "Running"
// Mailjet's own 404 envelope (VCR `Object not found`); a proxy's 404 page is not proof of anything.
const MailjetNotFound = Schema.Struct({ ErrorMessage: Schema.String, StatusCode: Schema.Literal(404) })
export const isMailjetNotFound = Schema.is(MailjetNotFound)
// ---------------------------------------------------------------------------------------------

export const envelope = <A, I>(item: Schema.Schema<A, I>) =>
  Schema.Struct({ Count: Schema.Number, Data: Schema.Array(item), Total: Schema.Number })

export const ManagedItem = Schema.Struct({ ContactID: Schema.optional(Schema.Number) })

export const ManagedEnvelope = envelope(ManagedItem)

/**
 * managecontact's envelope checked by hand: the one reply every event gets, where the Schema's
 * parser cost more than the rest of reading it (BENCHMARKS.md). It passes only what
 * `ManagedEnvelope` accepts, as it is; anything else is `undefined`, for the Schema to read (and
 * to say what is wrong with it).
 */
export const checkManaged = (json: unknown): typeof ManagedEnvelope.Type | undefined => {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined
  const env = json as { readonly Count?: unknown; readonly Data?: unknown; readonly Total?: unknown }
  if (typeof env.Count !== "number" || typeof env.Total !== "number" || !Array.isArray(env.Data)) return undefined
  for (const item of env.Data as ReadonlyArray<unknown>) {
    if (typeof item !== "object" || item === null || Array.isArray(item)) return undefined
    const id = (item as { readonly ContactID?: unknown }).ContactID
    if (id !== undefined && typeof id !== "number") return undefined
  }
  return json as typeof ManagedEnvelope.Type
}
export const ListItem = Schema.Struct({
  ID: Schema.Number,
  Name: Schema.String,
  IsDeleted: Schema.optional(Schema.Boolean),
  SubscriberCount: Schema.optional(Schema.Number)
})
export const PropertyItem = Schema.Struct({ ID: Schema.Number, Name: Schema.String, Datatype: DatatypeSchema })
export const ContactItem = Schema.Struct({
  ID: Schema.Number,
  Email: Schema.String,
  Name: Schema.String,
  CreatedAt: Schema.String
})
// Values are text in every recording; anything else is shown as JSON rather than refused.
export const ContactDataItem = Schema.Struct({
  Data: Schema.Array(Schema.Struct({ Name: Schema.String, Value: Schema.Unknown }))
})
export const RecipientItem = Schema.Struct({
  ContactID: Schema.Number,
  IsUnsubscribed: Schema.Boolean,
  SubscribedAt: Schema.String,
  UnsubscribedAt: Schema.String
})

// Reply items → what the calls give.
export const toDefinition = (p: typeof PropertyItem.Type): PropertyDefinition => ({ id: p.ID, name: p.Name, datatype: p.Datatype })
export const toContact = (c: typeof ContactItem.Type): MailjetContact => ({ id: c.ID, email: c.Email, name: c.Name, createdAt: c.CreatedAt })
export const toRecipient = (r: typeof RecipientItem.Type): Recipient => ({
  contactId: r.ContactID,
  subscribedAt: r.SubscribedAt,
  unsubscribedAt: r.UnsubscribedAt
})
/** Values as text, as every recording has them; anything else as JSON rather than refused. */
export const toPairs = (d: typeof ContactDataItem.Type): ReadonlyArray<readonly [string, string]> =>
  d.Data.map(({ Name, Value }) => [Name, typeof Value === "string" ? Value : JSON.stringify(Value)] as const)
export const toSubscription: (r: Option.Option<typeof RecipientItem.Type>) => Subscription = Option.match({
  onNone: (): Subscription => ({ _tag: "NotInList" }),
  onSome: (r): Subscription =>
    r.IsUnsubscribed
      ? { _tag: "Unsubscribed", subscribedAt: r.SubscribedAt, unsubscribedAt: r.UnsubscribedAt }
      : { _tag: "Subscribed", subscribedAt: r.SubscribedAt }
})
export const toContactState = (
  subscription: Subscription,
  data: Option.Option<ReadonlyArray<readonly [string, string]>>
): ContactState => ({
  exists: Option.isSome(data) || subscription._tag !== "NotInList",
  membership: subscription._tag === "NotInList" ? undefined : subscription._tag === "Subscribed" ? "subscribed" : "unsubscribed",
  properties: Option.match(data, { onNone: () => ({}), onSome: (d) => Object.fromEntries(d) })
})

/** A poll's job row, as the engine reads it. */
export const toBulkJob = (job: typeof BulkJobItem.Type): BulkJob => ({
  status: jobStatus(job.Status),
  detail: job.Status,
  error: job.Error ?? "",
  errorFile: job.ErrorFile === undefined || job.ErrorFile === null || job.ErrorFile === "" ? undefined : job.ErrorFile
})
