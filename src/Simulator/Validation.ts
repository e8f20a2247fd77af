/**
 * Reading a request: its JSON body, its fields (matched case-insensitively, as Mailjet does), its
 * query (paging), and whether a value fits a property's datatype or an address is acceptable.
 * Pure functions; the replies they choose come from `Replies.ts`.
 */
import { envelope, error, type Outcome, reply, unknownField } from "./Replies.js"
import type { Datatype } from "./State.js"

export type { Datatype }
export const DATATYPES: ReadonlyArray<Datatype> = ["str", "int", "float", "bool", "datetime"]

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }
export type JsonObject = { readonly [key: string]: Json }

export const isJsonObject = (u: unknown): u is JsonObject => typeof u === "object" && u !== null && !Array.isArray(u)

// RFC 3339 date-time; the offset is optional because Mailjet's own example omits it
// (`2018-01-01T00:00:00`, mailjet/api-documentation guides).
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$/

export const fitsDatatype = (datatype: Datatype, value: Json): boolean => {
  switch (datatype) {
    case "str":
      return typeof value === "string"
    case "int":
      return typeof value === "number" && Number.isSafeInteger(value)
    case "float":
      return typeof value === "number" && Number.isFinite(value)
    case "bool":
      return typeof value === "boolean"
    case "datetime":
      if (typeof value === "number") return Number.isSafeInteger(value)
      return typeof value === "string" && RFC3339.test(value) && !Number.isNaN(Date.parse(value.replace(/[Tt ]/, "T")))
  }
}

/**
 * Why an address is rejected, or undefined when it is acceptable. Mailjet's exact rules are
 * UNCONFIRMED; the "No @ character in mail" wording is from a live reply (JAVA-IT).
 */
export const emailProblem = (email: string): string | undefined => {
  const at = email.lastIndexOf("@")
  if (at === -1) return "No @ character in mail"
  if (/[\s"(),:;<>[\\\]]/.test(email)) return "Invalid character in mail"
  if (email.indexOf("@") !== at) return "More than one @ character in mail"
  const local = email.slice(0, at)
  const domain = email.slice(at + 1)
  if (local.length === 0) return "Empty local part in mail"
  if (domain.length === 0) return "Empty domain in mail"
  if (local.startsWith(".") || local.endsWith(".") || local.includes("..")) return "Invalid local part in mail"
  if (!domain.includes(".") || domain.startsWith(".") || domain.endsWith(".") || domain.includes("..")) {
    return "Invalid domain in mail"
  }
  return undefined
}

/** The request body, parsed once per request. */
export interface Body {
  readonly raw: string | undefined
  /** Set when `raw` is valid JSON. */
  readonly json: { readonly value: unknown } | undefined
  /** Set when `raw` is not valid JSON: the parser's message. */
  readonly parseError: string | undefined
}

export const readBody = (raw: string | undefined): Body => {
  if (raw === undefined || raw.trim() === "") return { raw, json: undefined, parseError: undefined }
  try {
    return { raw, json: { value: JSON.parse(raw) }, parseError: undefined }
  } catch (e) {
    return { raw, json: undefined, parseError: e instanceof Error ? e.message : String(e) }
  }
}

type Parsed = { readonly ok: true; readonly value: JsonObject } | { readonly ok: false; readonly outcome: Outcome }

export const parseObject = (body: Body): Parsed => {
  if (body.parseError !== undefined) {
    return { ok: false, outcome: error(400, `Invalid json input: ${body.parseError}`) }
  }
  if (body.json === undefined) {
    // Verbatim from a live reply to an empty body (mailjet-apiv3-java#136).
    return { ok: false, outcome: error(400, "Invalid json input: unexpected end of stream at stream position 0 ...|...") }
  }
  const value = body.json.value
  if (!isJsonObject(value)) {
    return { ok: false, outcome: error(400, "Invalid json input: expected \"{\" at stream position 0") }
  }
  return { ok: true, value }
}

/**
 * Reads body fields by case-insensitive name. Rejects the first unknown field the way the
 * /contact endpoint does (mailjet-apiv3-php#244); for managecontact that is UNCONFIRMED.
 */
export const readFields = <K extends string>(
  body: JsonObject,
  typeName: string,
  known: ReadonlyArray<K>
): { readonly ok: true; readonly fields: Partial<Record<K, Json>> } | { readonly ok: false; readonly outcome: Outcome } => {
  const fields: Partial<Record<K, Json>> = {}
  for (const key of Object.keys(body)) {
    const lower = key.toLowerCase()
    const match = known.find((k) => k.toLowerCase() === lower)
    if (match === undefined) return { ok: false, outcome: unknownField(typeName, key) }
    const value = body[key]
    if (value !== undefined) fields[match] = value
  }
  return { ok: true, fields }
}

export interface Query {
  readonly get: (name: string) => string | undefined
}

export const parseQuery = (search: string): Query => {
  if (search === "") return { get: () => undefined }
  const params = new Map<string, string>()
  for (const [k, v] of new URLSearchParams(search)) {
    const key = k.toLowerCase()
    // Only the first occurrence of a repeated parameter counts (Mailjet's filtering guide).
    if (!params.has(key)) params.set(key, v)
  }
  return { get: (name) => params.get(name.toLowerCase()) }
}

export const truthy = (v: string | undefined): boolean => v !== undefined && (v === "1" || v.toLowerCase() === "true")

/** Limit default 10, max 1000, 0 means the maximum; Offset from 0; countOnly / countRecords (Mailjet's API overview). */
export const page = <A>(items: ReadonlyArray<A>, query: Query, render: (a: A) => unknown): Outcome => {
  if (truthy(query.get("countonly"))) return reply(200, JSON.stringify({ Count: items.length, Data: [], Total: items.length }))
  const limitRaw = Number.parseInt(query.get("limit") ?? "", 10)
  const limit = Number.isNaN(limitRaw) || limitRaw < 0 ? 10 : limitRaw === 0 ? 1000 : Math.min(limitRaw, 1000)
  const offsetRaw = Number.parseInt(query.get("offset") ?? "", 10)
  const offset = Number.isNaN(offsetRaw) || offsetRaw < 0 ? 0 : offsetRaw
  const data = items.slice(offset, offset + limit).map(render)
  return envelope(200, data, truthy(query.get("countrecords")) ? items.length : data.length)
}
