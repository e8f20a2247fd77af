/**
 * The errors a Mailjet call can end in, each with the fix in its message.
 * Fatal ones (`Unauthorized`, `ListNotFound`) stop a run; per-contact ones are
 * dead-lettered; transient ones are retried.
 */
import * as Schema from "effect/Schema"

export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {}) {
  override get message(): string {
    return "Mailjet rejected the credentials (401). Re-copy both keys from Mailjet's API key management page into MAILJET_API_KEY and MAILJET_SECRET_KEY (the API key is the user, the secret key the password); a regenerated secret invalidates the old one."
  }
}

export class ListNotFound extends Schema.TaggedError<ListNotFound>()("ListNotFound", {
  listId: Schema.Number,
  /** The list exists but was deleted: Mailjet still reads it, with `IsDeleted: true`. */
  deleted: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    return this.deleted === true
      ? `Mailjet contact list ${this.listId} was deleted (it reads IsDeleted: true) and takes no contacts. Create a list in Mailjet (Contacts > Contact lists) and set MAILJET_LIST_ID to its ID.`
      : `Mailjet has no contact list ${this.listId} for this API key (404 Object not found). Check MAILJET_LIST_ID against the list's ID in Mailjet (Contacts > Contact lists), and that the keys belong to the same account or sub-account.`
  }
}

/**
 * `properties`: every property Mailjet named in its refusal, when only properties were refused, so
 * the rest of the update can be sent without them.
 */
const RejectedProperties = Schema.optional(Schema.Array(Schema.String))

export class PropertyMissing extends Schema.TaggedError<PropertyMissing>()("PropertyMissing", {
  property: Schema.String,
  properties: RejectedProperties
}) {
  override get message(): string {
    return `The contact property "${this.property}" is not defined in Mailjet (400 Property not defined). Create it in Mailjet (Contacts > Contact properties), or run \`signal-mailjet check --create-missing-properties\`, then replay the dead letters.`
  }
}

export class InvalidContact extends Schema.TaggedError<InvalidContact>()("InvalidContact", {
  detail: Schema.String,
  properties: RejectedProperties
}) {
  override get message(): string {
    return `Mailjet refused the contact: ${this.detail}. Fix the event's data or the preset's property types, then replay the dead letters.`
  }
}

export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {}) {
  override get message(): string {
    // Shown both while a call is retried and once an event is dead-lettered: it says nothing of what happens next.
    return "Mailjet answered 429 Too Many Requests: the requests come faster than the account's rate limit. Lower MAILJET_MAX_RPS (and MAILJET_CONCURRENCY) to what the account allows."
  }
}

export class MailjetUnavailable extends Schema.TaggedError<MailjetUnavailable>()("MailjetUnavailable", {
  detail: Schema.String,
  /** The origin nothing answered at (connection refused, no such host): the fix is the address, not Mailjet. */
  unreachable: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return this.unreachable !== undefined
      ? `Nothing answers at ${this.unreachable}, the address MAILJET_BASE_URL gives (${this.detail}). Check MAILJET_BASE_URL: unset it for Mailjet (https://api.mailjet.com), or start the simulator there (signal-mailjet simulate).`
      : `Mailjet could not be reached or failed (${this.detail}). If it persists, check https://status.mailjet.com, the network and MAILJET_BASE_URL.`
  }
}

/** Transport failures where nothing listens at the address, as opposed to a reset or a timeout on the way. */
export const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"])

/** Mailjet refused a whole bulk call (400): its events are sent one by one instead. */
export class BulkRefused extends Schema.TaggedError<BulkRefused>()("BulkRefused", {
  detail: Schema.String
}) {
  override get message(): string {
    return `Mailjet refused the bulk call: ${this.detail}. Its events are sent one by one; if it says the call is too large, lower MAILJET_BULK_SIZE.`
  }
}

/** Any error a Mailjet call can end in. */
export type MailjetError =
  | Unauthorized
  | ListNotFound
  | PropertyMissing
  | InvalidContact
  | RateLimited
  | MailjetUnavailable

/** Errors that stop a whole run: no later event can succeed until a person fixes the configuration. */
export type FatalError = Unauthorized | ListNotFound

export const isFatal = (e: { readonly _tag: string }): e is FatalError =>
  e._tag === "Unauthorized" || e._tag === "ListNotFound"

/** Errors worth another attempt of the same request. */
export const isTransient = (e: { readonly _tag: string }): e is RateLimited | MailjetUnavailable =>
  e._tag === "RateLimited" || e._tag === "MailjetUnavailable"
