/**
 * Mailjet's error bodies, read tolerantly: the v3 envelope (`ErrorMessage`, `ErrorInfo`), a bulk
 * job's error file, and what of a reply fits in a reason line.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { maskEmails } from "../Domain/Mask.js"
import { InvalidContact, PropertyMissing } from "./MailjetError.js"
import { BulkErrorEntry, type BulkRejection } from "./MailjetShapes.js"

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
export const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** A reply body short enough for a reason line: HTML from a proxy is mostly markup. */
export const excerpt = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat === "" ? "empty body" : flat.length > 160 ? `${flat.slice(0, 160)}…` : flat
}


const decodeErrorFile = Schema.decodeUnknownEither(Schema.Array(BulkErrorEntry))

/** A bulk job's error file: each refused contact with the error its own update would have had. */
export const readErrorFile = (text: string): ReadonlyArray<BulkRejection> | undefined => {
  const decoded = decodeErrorFile(parseJson(text))
  if (Either.isLeft(decoded)) return undefined
  return decoded.right.map((e): BulkRejection => {
    const d = readErrorBody({ ErrorMessage: e.ErrorMessage, ErrorInfo: e.ErrorInfo })
    const properties = d.onlyProperties
    return {
      email: e.Email,
      error: d.undefinedProperties[0] !== undefined
        ? new PropertyMissing({ property: d.undefinedProperties[0], ...(properties ? { properties } : {}) })
        : new InvalidContact({ detail: d.message, ...(properties ? { properties } : {}) })
    }
  })
}
