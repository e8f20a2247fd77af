/**
 * Fitting property values to Mailjet's datatypes before they are sent, so a `"49.90"` from a
 * web form lands as 49.9 in a float property instead of failing the whole contact.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/** A Mailjet contact property's datatype. */
export const Datatype = Schema.Literal("str", "int", "float", "bool", "datetime")
export type Datatype = typeof Datatype.Type

const INT = /^[+-]?\d+$/
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/

const describe = (v: unknown): string =>
  v === null
    ? "null"
    : v === undefined
    ? "no value"
    : Array.isArray(v)
    ? "a list"
    : typeof v === "object"
    ? "an object"
    : `a ${typeof v}`

/**
 * RFC 3339 in UTC; Unix timestamps (seconds) are accepted as Mailjet does. RFC 3339 has four-digit
 * years, so instants outside years 0000 to 9999 (which `toISOString` writes as `+010000-…`) are not dates.
 */
// A date-time with no offset is read as UTC, not as this server's local time.
const withZone = (s: string): string => (/T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(s) ? `${s}Z` : s)

const toDatetime = (v: unknown): string | undefined => {
  const date = typeof v === "number" && Number.isFinite(v)
    ? new Date(v * 1000)
    : typeof v === "string" && v.trim() !== ""
    ? INT.test(v.trim()) ? new Date(Number(v.trim()) * 1000) : new Date(withZone(v.trim()))
    : undefined
  if (date === undefined || Number.isNaN(date.getTime())) return undefined
  const year = date.getUTCFullYear()
  if (year < 0 || year > 9999) return undefined
  return date.toISOString().replace(/\.000Z$/, "Z")
}

export const coerceValue = (datatype: Datatype, v: unknown): Either.Either<string | number | boolean, string> => {
  const fail = () => Either.left(`expects ${datatype}, got ${describe(v)}`)
  switch (datatype) {
    case "str":
      return typeof v === "string" ? Either.right(v) : typeof v === "number" || typeof v === "boolean" ? Either.right(String(v)) : fail()
    case "int":
      if (typeof v === "number") return Number.isSafeInteger(v) ? Either.right(v) : fail()
      return typeof v === "string" && INT.test(v.trim()) && Number.isSafeInteger(Number(v.trim())) ? Either.right(Number(v.trim())) : fail()
    case "float":
      if (typeof v === "number") return Number.isFinite(v) ? Either.right(v) : fail()
      // "1e400" is numeric text, but Infinity is not a float Mailjet (or JSON) can hold
      return typeof v === "string" && FLOAT.test(v.trim()) && Number.isFinite(Number(v.trim()))
        ? Either.right(Number(v.trim()))
        : fail()
    case "bool":
      if (typeof v === "boolean") return Either.right(v)
      if (v === 1 || v === 0) return Either.right(v === 1)
      if (typeof v === "string" && /^(true|false)$/i.test(v.trim())) return Either.right(v.trim().toLowerCase() === "true")
      return fail()
    case "datetime": {
      const d = toDatetime(v)
      return d === undefined ? fail() : Either.right(d)
    }
  }
}

/** A property whose value cannot be sent as it is, and why. */
export interface RejectedProperty {
  readonly name: string
  readonly reason: string
}

/**
 * Every property fitted to its datatype; those that cannot be are set apart, named, so the rest of
 * the update (and its subscription action) still goes. A property with no known datatype is sent
 * as is: Mailjet will say whether it exists.
 */
export const fitProperties = (
  properties: Readonly<Record<string, unknown>>,
  datatypes: ReadonlyMap<string, Datatype>
): { readonly fitted: Record<string, string | number | boolean>; readonly rejected: ReadonlyArray<RejectedProperty> } => {
  const fitted: Record<string, string | number | boolean> = {}
  const rejected: Array<RejectedProperty> = []
  // Set one by one, not through an array of entries: this runs for every event.
  const put = (name: string, value: string | number | boolean) => {
    // Defined, not assigned: a "__proto__" property stays data.
    if (name === "__proto__") Object.defineProperty(fitted, name, { value, enumerable: true, writable: true, configurable: true })
    else fitted[name] = value
  }
  for (const name in properties) {
    if (!Object.hasOwn(properties, name)) continue
    const value = properties[name]
    const datatype = datatypes.get(name)
    if (datatype === undefined) {
      if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") put(name, value)
      else rejected.push({ name, reason: `property "${name}" has ${describe(value)}, which no Mailjet property can hold` })
      continue
    }
    const fit = coerceValue(datatype, value)
    if (Either.isLeft(fit)) rejected.push({ name, reason: `property "${name}" ${fit.left}` })
    else put(name, fit.right)
  }
  return { fitted, rejected }
}

/** Every property fitted to its datatype, or the first that cannot be, named. */
export const coerceProperties = (
  properties: Readonly<Record<string, unknown>>,
  datatypes: ReadonlyMap<string, Datatype>
): Either.Either<Record<string, string | number | boolean>, string> => {
  const { fitted, rejected } = fitProperties(properties, datatypes)
  return rejected[0] === undefined ? Either.right(fitted) : Either.left(rejected[0].reason)
}
