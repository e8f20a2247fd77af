/** What became of one input event, and the line `deliver` prints for it. */
import { safeStringify } from "../internal/safeStringify.js"
import type { Action } from "../Preset/Preset.js"

/**
 * Properties Mailjet refused (not defined, or a value their datatype cannot take), left out so the
 * rest of the update and its subscription action landed in order. They are dead-lettered on their
 * own, and a replay sends only them, never a subscription change.
 */
export interface PartialUpdate {
  readonly properties: ReadonlyArray<string>
  readonly error: "PropertyMissing" | "InvalidContact"
  readonly reason: string
}

export type Outcome =
  | {
    readonly outcome: "delivered"
    readonly action: Action
    readonly status: number
    readonly attempts: number
    readonly partial?: PartialUpdate
    /** Why the action sent is not the one the event maps to (a replay of refused properties). */
    readonly note?: string
    /** Standing consent met a suppression: sent as `addnoforce` instead of `addforce`, and why. */
    readonly demoted?: string
    /** A replay overtaken by a newer event of the contact: the parts of it not applied. */
    readonly superseded?: ReadonlyArray<string>
    /** Sent in a bulk job (managemanycontacts), with the other updates of its contact in the window. */
    readonly via?: "bulk"
    readonly job?: number
  }
  | Erasure<"erased">
  | Erasure<"not-found">
  | { readonly outcome: "dropped"; readonly reason: string }
  | {
    readonly outcome: "dead-lettered"
    readonly error: string
    readonly reason: string
    readonly attempts: number
    /** Refused inside a bulk job: the job's ID. */
    readonly via?: "bulk"
    readonly job?: number
  }
  | { readonly outcome: "not-attempted"; readonly reason: string; readonly error?: string; readonly attempts?: number }

/** A deletion request: the contact was erased, or Mailjet had no contact with its address. */
export interface Erasure<O extends "erased" | "not-found"> {
  readonly outcome: O
  readonly action: "erase"
  /** Mailjet's answer: 200 to the erasure; 404 to the look-up by address. */
  readonly status: number
  /** Erasure calls sent (DELETE): none when the contact was not found. */
  readonly attempts: number
}

/** One input line's fate, with what is needed to print it and to dead-letter it. */
export interface Result {
  readonly line: number
  /** The input as parsed (or the raw text when it was not JSON). */
  readonly raw: unknown
  /** The line or record as read: what a dead letter keeps. Undefined only for an embedded `deliver(value)`. */
  readonly text: string | undefined
  readonly messageId: string | undefined
  readonly event: string | undefined
  readonly outcome: Outcome
}

/**
 * The last few outcomes' part of the line, `"outcome":…}`: a bulk window's events share an outcome
 * object a job and action (three actions in turn in a backfill), so most lines write only their
 * own three fields.
 */
const SHARED = 4
const outcomes: Array<Outcome | undefined> = new Array(SHARED).fill(undefined)
const tails: Array<string> = new Array(SHARED).fill("")
/** The same as UTF-8, made when first asked for (the CLI's stdout, OutcomeLines). */
const tailBytes: Array<Buffer | undefined> = new Array(SHARED).fill(undefined)
let next = 0

/** The outcome's place among the last few, taken (its part of the line made) if it is not one of them. */
const sharedTail = (o: Outcome): number => {
  let k = outcomes.indexOf(o)
  if (k < 0) {
    k = next
    next = (next + 1) % SHARED
    outcomes[k] = o
    tails[k] = outcomePart(o)
    tailBytes[k] = undefined
  }
  return k
}

/** The outcome's part of its line as UTF-8. */
export const outcomeTailBytes = (o: Outcome): Buffer => {
  const k = sharedTail(o)
  return tailBytes[k] ??= Buffer.from(tails[k]!, "utf8")
}

/** The stdout line: `{"line":1,"messageId":"…","event":"Signed Up","outcome":"delivered",…}`. */
export const outcomeLine = (r: Result): string => {
  const tail = tails[sharedTail(r.outcome)]!
  // As JSON.stringify writes them: a field that is undefined is left out.
  let line = r.line === undefined ? "{" : `{"line":${JSON.stringify(r.line)},`
  if (r.messageId !== undefined) line += `"messageId":${JSON.stringify(r.messageId)},`
  if (r.event !== undefined) line += `"event":${JSON.stringify(r.event)},`
  return line + tail
}

/** An outcome's fields on its line, without the opening brace. */
const outcomePart = (o: Outcome): string =>
  JSON.stringify({
    outcome: o.outcome,
    action: "action" in o ? o.action : undefined,
    status: "status" in o ? o.status : undefined,
    attempts: "attempts" in o ? o.attempts : undefined,
    partial: o.outcome === "delivered" ? o.partial?.properties : undefined,
    demoted: o.outcome === "delivered" ? o.demoted : undefined,
    superseded: o.outcome === "delivered" ? o.superseded : undefined,
    reason: "reason" in o ? o.reason : o.outcome === "delivered" ? o.partial?.reason ?? o.note : undefined,
    error: "error" in o ? o.error : o.outcome === "delivered" ? o.partial?.error : undefined,
    via: "via" in o ? o.via : undefined,
    job: "job" in o ? o.job : undefined
  }).slice(1)

/** Kafka refuses records over 1 MB; a dead letter stays well under it, whatever the input. */
export const DEAD_LETTER_MAX_BYTES = 512 * 1024

/**
 * Reasons are short; a longer one (a long message from Mailjet) is cut, and so is a source name, so
 * the record's head stays under MIN_DEAD_LETTER_BYTES even with every character escaped six-fold.
 */
const MAX_REASON_LENGTH = 1000
const MAX_SOURCE_LENGTH = 500
/** The smallest bound `deadLetterLine` takes: a record that keeps its original by reference fits it. */
export const MIN_DEAD_LETTER_BYTES = 16 * 1024

/** Deeper than any real event; what an embedded `deliver(value)` dead letter keeps of its value. */
const MAX_EMBEDDED_DEPTH = 1000

export interface DeadLetterOptions {
  /**
   * The bound on one record in UTF-8 bytes (at least MIN_DEAD_LETTER_BYTES); an original that would
   * not fit is kept by reference.
   */
  readonly maxBytes?: number
  /** Where the input came from (a file name, `topic/partition/offset`), for a record kept by reference. */
  readonly source?: string
  /** Keep the original by reference whatever its size, and say why: its sink refused the record with it. */
  readonly refused?: string
}

/**
 * A dead-letter record: why, then the original exactly once, so `replay` can take it as input.
 * `{"error":…,"reason":…,"attempts":…,"at":…,"line":…,"event":<the line as read>}` when the line was
 * JSON (spliced in as it was: never parsed and written again), `"text":"<the line>"` when it was not.
 * An original that would make the record larger than `maxBytes` is left out: the record names its
 * `line` (and `source`) and `bytes` instead, and says so in `omitted`.
 */
export const deadLetterLine = (r: Result, at: Date, options: DeadLetterOptions = {}): string | undefined => {
  const o = r.outcome
  // Delivered without refused properties: those alone are dead-lettered (`only`), for a replay of them.
  const dead = o.outcome === "dead-lettered"
    ? { error: o.error, reason: o.reason, only: undefined }
    : o.outcome === "delivered" && o.partial !== undefined
    ? { error: o.partial.error, reason: o.partial.reason, only: o.partial.properties }
    : undefined
  if (dead === undefined) return undefined
  const maxBytes = Math.max(options.maxBytes ?? DEAD_LETTER_MAX_BYTES, MIN_DEAD_LETTER_BYTES)
  const reason = cut(dead.reason, MAX_REASON_LENGTH)
  const source = options.source === undefined ? undefined : cut(options.source, MAX_SOURCE_LENGTH)
  const head = JSON.stringify({
    error: dead.error,
    reason,
    attempts: o.outcome === "not-attempted" || o.outcome === "dropped" ? 0 : o.attempts,
    at: at.toISOString(),
    line: r.line,
    ...(source === undefined ? {} : { source }),
    ...(dead.only === undefined ? {} : { only: dead.only })
  }).slice(0, -1)
  const original = options.refused === undefined ? keptOriginal(r, maxBytes) : undefined
  if (original !== undefined) {
    const record = `${head},${original}}`
    if (Buffer.byteLength(record) <= maxBytes) return record
  }
  const bytes = r.text === undefined ? undefined : Buffer.byteLength(r.text)
  const where = source === undefined ? `line ${r.line} of the input` : `line ${r.line} of ${source}`
  return `${head},${
    JSON.stringify({
      ...(bytes === undefined ? {} : { bytes }),
      omitted: options.refused !== undefined
        ? `the original${bytes === undefined ? "" : ` (${bytes} bytes)`} is not kept: ${cut(options.refused, MAX_REASON_LENGTH)}; it is ${where}`
        : r.text === undefined
        ? `the event is not kept: it is over ${maxBytes} bytes or ${MAX_EMBEDDED_DEPTH} levels deep as JSON`
        : `the original (${bytes} bytes) is not kept: a dead letter holds at most ${maxBytes} bytes; it is ${where}`
    }).slice(1)
  }`
}

/**
 * For a dead-letter record that kept its original by reference (replayed as it is), the reason it
 * is dead-lettered again; undefined for anything else.
 */
export const keptByReference = (raw: unknown): string | undefined => {
  if (typeof raw !== "object" || raw === null || !("omitted" in raw) || !("error" in raw) || !("at" in raw)) {
    return undefined
  }
  const { line, source } = raw as { readonly line?: unknown; readonly source?: unknown }
  const where = typeof source === "string" ? ` of ${source}` : " of the original input"
  return `a dead letter that kept its original by reference (too large to hold): replay the original${
    typeof line === "number" ? `, line ${line}${where}` : ""
  }, not this record`
}

const cut = (s: string, max: number): string => s.length <= max ? s : `${s.slice(0, max - 1)}…`

/** `"event":…` or `"text":…`, or undefined when it cannot fit. */
const keptOriginal = (r: Result, maxBytes: number): string | undefined => {
  if (r.text === undefined) {
    const json = safeStringify(r.raw, { maxDepth: MAX_EMBEDDED_DEPTH, maxLength: maxBytes })
    return json === undefined ? undefined : `"event":${json}`
  }
  // UTF-8 never takes fewer bytes than UTF-16 code units: a text this long cannot fit, so it is not copied
  if (r.text.length > maxBytes) return undefined
  return isJson(r.text) ? `"event":${r.text}` : `"text":${JSON.stringify(r.text)}`
}

// V8's JSON.parse is not recursive (checked: 100,000 levels parse), so any depth is safe here.
const isJson = (text: string): boolean => {
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

export interface Summary {
  read: number
  delivered: number
  /** Deletion requests: contacts erased, or not found in Mailjet (nothing to erase). */
  erased: number
  notFound: number
  dropped: number
  deadLettered: number
  notAttempted: number
  /** Delivered without some refused properties, which were dead-lettered on their own. */
  partial: number
}

export const emptySummary = (): Summary => ({
  read: 0,
  delivered: 0,
  erased: 0,
  notFound: 0,
  dropped: 0,
  deadLettered: 0,
  notAttempted: 0,
  partial: 0
})

export const addToSummary = (s: Summary, r: Result): Summary => {
  s.read++
  switch (r.outcome.outcome) {
    case "delivered":
      s.delivered++
      if (r.outcome.partial !== undefined) s.partial++
      break
    case "erased":
      s.erased++
      break
    case "not-found":
      s.notFound++
      break
    case "dropped":
      s.dropped++
      break
    case "dead-lettered":
      s.deadLettered++
      break
    case "not-attempted":
      s.notAttempted++
  }
  return s
}
