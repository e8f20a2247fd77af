/** What became of one input event, and the line `deliver` prints for it. */
import type { Action } from "../Preset/Preset.js"

export type Outcome =
  | { readonly outcome: "delivered"; readonly action: Action; readonly status: number; readonly attempts: number }
  | { readonly outcome: "dropped"; readonly reason: string }
  | {
    readonly outcome: "dead-lettered"
    readonly error: string
    readonly reason: string
    readonly attempts: number
  }
  | { readonly outcome: "not-attempted"; readonly reason: string; readonly error?: string; readonly attempts?: number }

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
    reason: "reason" in o ? o.reason : undefined,
    error: "error" in o ? o.error : undefined
  })
}

/** A dead-letter record: the original event plus why, so `replay` can take it as input. */
export const deadLetterLine = (r: Result, at: Date): string | undefined => {
  const o = r.outcome
  if (o.outcome !== "dead-lettered") return undefined
  return JSON.stringify({ event: r.raw, error: o.error, reason: o.reason, attempts: o.attempts, at: at.toISOString() })
}

export interface Summary {
  read: number
  delivered: number
  dropped: number
  deadLettered: number
  notAttempted: number
}

export const emptySummary = (): Summary => ({ read: 0, delivered: 0, dropped: 0, deadLettered: 0, notAttempted: 0 })

export const addToSummary = (s: Summary, r: Result): Summary => {
  s.read++
  switch (r.outcome.outcome) {
    case "delivered":
      s.delivered++
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
