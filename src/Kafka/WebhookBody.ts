/**
 * The body of a Mailjet event callback, read one event at a time. Mailjet's payloads are loosely
 * typed (`"hard_bounce":""`, `"mj_list_id":""`, IDs and `time` as numbers or strings), and a whole
 * body refused is retried for 24 h and then lost with every valid unsubscribe in it: so only text
 * that is not JSON at all is refused, and an event that cannot be acted on is skipped and counted,
 * never a reason to drop its neighbours.
 *
 * Suppressing: `unsub` for this list (or naming no readable list), `spam`, `bounce` with a true
 * `hard_bounce`, `blocked`. Every other event is read and needs nothing.
 */
import * as Either from "effect/Either"
import { normaliseEmail } from "../Mapping.js"
import type { Learnt } from "../Suppressions.js"

/** Why an event was not acted on: a bounded set (a metric label), never the event's content. */
export type SkipReason = "not_an_event" | "no_usable_email" | "unreadable_hard_bounce"

export const SKIP_REASONS: Record<SkipReason, string> = {
  not_an_event: "not an event object",
  no_usable_email: "without a usable email",
  unreadable_hard_bounce: "a bounce whose hard_bounce is neither true nor false"
}

export interface CallbackRead {
  readonly learnt: ReadonlyArray<Learnt>
  /** One per event skipped, in body order. */
  readonly skipped: ReadonlyArray<SkipReason>
  /** Suppressions whose own `time` was unusable, dated when the body was received instead. */
  readonly undated: number
}

export const NOT_JSON = "not JSON: Mailjet's event callbacks are a JSON object with \"event\", or an array of them"

/** No value: absent, null, or a blank string (Mailjet's `""` for a field that does not apply). */
const absent = (v: unknown): boolean => v === undefined || v === null || (typeof v === "string" && v.trim() === "")

/**
 * A flag such as `hard_bounce`: `true`/`false`, `1`/`0`, or those spelt as strings in any case.
 * Absent is false. Anything else is undefined: unreadable, not a guess.
 */
export const readFlag = (v: unknown): boolean | undefined => {
  if (absent(v) || v === false || v === 0) return false
  if (v === true || v === 1) return true
  if (typeof v !== "string") return undefined
  const s = v.trim().toLowerCase()
  return s === "true" || s === "1" ? true : s === "false" || s === "0" ? false : undefined
}

/** An ID such as `mj_list_id`: a positive integer, or its decimal digits as a string. Else undefined. */
export const readId = (v: unknown): number | undefined => {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN
  return Number.isSafeInteger(n) && n > 0 ? n : undefined
}

/**
 * Unix seconds (`time`): a non-negative number, or its decimal form as a string ("1700000000").
 * Undefined when absent, of another type, or outside what a Date can hold.
 */
export const readTime = (v: unknown): Date | undefined => {
  const s = typeof v === "number" ? v : typeof v === "string" && /^\s*\d+(\.\d+)?\s*$/.test(v) ? Number(v) : Number.NaN
  return Number.isFinite(s) && s >= 0 && s * 1000 <= 8.64e15 ? new Date(Math.floor(s * 1000)) : undefined
}

/** The address, as delivery keys contacts (trimmed, lower-cased); undefined when it cannot be one. */
export const readEmail = (v: unknown): string | undefined => (typeof v === "string" ? normaliseEmail(v) : undefined)

const WHAT: Record<string, string> = {
  unsub: "unsubscribed in Mailjet",
  spam: "marked as spam in Mailjet",
  bounce: "hard-bounced in Mailjet",
  blocked: "blocked by Mailjet"
}

/**
 * Whether an event suppresses, or why it cannot be told. Complaints, hard bounces and blocks hold
 * for the whole account; an unsubscribe for its list, and for ours when the list is not readable
 * (keeping someone unsubscribed by mistake is the safe side of consent).
 */
const suppresses = (e: Record<string, unknown>, listId: number): boolean | SkipReason => {
  switch (e["event"]) {
    case "unsub": {
      const list = readId(e["mj_list_id"])
      return list === undefined || list === listId
    }
    case "spam":
    case "blocked":
      return true
    case "bounce":
      return readFlag(e["hard_bounce"]) ?? "unreadable_hard_bounce"
    default:
      return false
  }
}

const iso = (d: Date) => d.toISOString().replace(/\.000Z$/, "Z")

/**
 * The suppressions a body carries and the events skipped; a message (never the body: it holds
 * emails) only when the text is not JSON. `now` dates a suppression whose own time is unusable.
 */
export const readCallback = (
  text: string,
  options: { readonly listId: number; readonly now: Date }
): Either.Either<CallbackRead, string> => {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return Either.left(NOT_JSON)
  }
  const learnt: Array<Learnt> = []
  const skipped: Array<SkipReason> = []
  let undated = 0
  for (const item of Array.isArray(body) ? body : [body]) {
    const e = typeof item === "object" && item !== null && !Array.isArray(item) ? item as Record<string, unknown> : undefined
    if (e === undefined || typeof e["event"] !== "string") {
      skipped.push("not_an_event")
      continue
    }
    const verdict = suppresses(e, options.listId)
    if (verdict === false) continue
    if (verdict !== true) {
      skipped.push(verdict)
      continue
    }
    const email = readEmail(e["email"])
    if (email === undefined) {
      skipped.push("no_usable_email")
      continue
    }
    const time = readTime(e["time"])
    if (time === undefined) undated++
    const at = iso(time ?? options.now)
    const event = e["event"] as string
    learnt.push({ email, event, at, reason: `${WHAT[event]} at ${at}` })
  }
  return Either.right({ learnt, skipped, undated })
}

/** "2 skipped: 1 without a usable email, 1 not an event object": for the log, free of content. */
export const describeSkipped = (skipped: ReadonlyArray<SkipReason>): string => {
  const counts = new Map<SkipReason, number>()
  for (const r of skipped) counts.set(r, (counts.get(r) ?? 0) + 1)
  return `${skipped.length} skipped: ${Array.from(counts, ([r, n]) => `${n} ${SKIP_REASONS[r]}`).join(", ")}`
}
