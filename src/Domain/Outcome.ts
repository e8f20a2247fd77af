/** What became of one input event, and the line `deliver` prints for it. */
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
  }
  | { readonly outcome: "dropped"; readonly reason: string }
  | {
    readonly outcome: "dead-lettered"
    readonly error: string
    readonly reason: string
    readonly attempts: number
  }
  | { readonly outcome: "not-attempted"; readonly reason: string; readonly error?: string; readonly attempts?: number }

export type OutcomeKind = Outcome["outcome"]

/** One input line's fate, with what is needed to print it and to dead-letter it. */
export interface Result {
  readonly line: number
  /** The input as parsed (or the raw text when it was not JSON): what a dead letter keeps. */
  readonly raw: unknown
  readonly messageId: string | undefined
  readonly event: string | undefined
  readonly outcome: Outcome
}

/** The stdout line: `{"line":1,"messageId":"…","event":"Signed Up","outcome":"delivered",…}`. */
export const outcomeLine = (r: Result): string => {
  const o = r.outcome
  return JSON.stringify({
    line: r.line,
    messageId: r.messageId,
    event: r.event,
    outcome: o.outcome,
    action: o.outcome === "delivered" ? o.action : undefined,
    status: o.outcome === "delivered" ? o.status : undefined,
    attempts: "attempts" in o ? o.attempts : undefined,
    partial: o.outcome === "delivered" ? o.partial?.properties : undefined,
    demoted: o.outcome === "delivered" ? o.demoted : undefined,
    superseded: o.outcome === "delivered" ? o.superseded : undefined,
    reason: "reason" in o ? o.reason : o.outcome === "delivered" ? o.partial?.reason ?? o.note : undefined,
    error: "error" in o ? o.error : o.outcome === "delivered" ? o.partial?.error : undefined
  })
}

/** A dead-letter record: the original event plus why, so `replay` can take it as input. */
export const deadLetterLine = (r: Result, at: Date): string | undefined => {
  const o = r.outcome
  if (o.outcome === "delivered" && o.partial !== undefined) {
    const { error, properties, reason } = o.partial
    return JSON.stringify({ event: r.raw, error, reason, attempts: o.attempts, at: at.toISOString(), only: properties })
  }
  if (o.outcome !== "dead-lettered") return undefined
  return JSON.stringify({ event: r.raw, error: o.error, reason: o.reason, attempts: o.attempts, at: at.toISOString() })
}

export interface Summary {
  read: number
  delivered: number
  dropped: number
  deadLettered: number
  notAttempted: number
  /** Delivered without some refused properties, which were dead-lettered on their own. */
  partial: number
}

export const emptySummary = (): Summary => ({
  read: 0,
  delivered: 0,
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
