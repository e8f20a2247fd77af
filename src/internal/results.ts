/**
 * What the engine's paths share about results: the units a lane settles, the outcome logged and
 * counted once per event, and results that read their event's text again only when asked.
 */
import * as Effect from "effect/Effect"
import type * as MetricLabel from "effect/MetricLabel"
import type { Outcome, Result } from "../Domain/Outcome.js"
import * as Metrics from "../Delivery/Metrics.js"
import type { Item, PackedSend, Prepared } from "../Delivery/Prepare.js"
import type { RunState } from "../Delivery/RunState.js"
import type { WindowPack } from "../Delivery/WindowPack.js"
import type { FatalError } from "../Mailjet/MailjetError.js"
import type { HeldItems } from "./heldItems.js"
import type { Ticket, WindowTicket } from "./order.js"
import type { Send } from "./send.js"

export type Done = Extract<Prepared, { _tag: "Done" }>
/**
 * What a lane settles: one event, or a window of events sent as bulk jobs (bulkSettle.ts). An
 * update's place and ticket sit beside its decision, not copied into it with every field.
 */
export type Unit<M> =
  | { readonly _tag: "One"; readonly item: M; readonly p: Done; readonly seq?: undefined; readonly ticket?: undefined }
  | { readonly _tag: "One"; readonly item: M; readonly p: Send; readonly seq: number; readonly ticket: Ticket }
  | {
    readonly _tag: "Window"
    readonly items: HeldItems<M>
    /** What was decided for each, and their texts, packed while the window waits. */
    readonly pack: WindowPack
    /** Its last event's place in the input: a drain takes or leaves the window whole. */
    readonly last: number
    /** One for all its contacts. */
    readonly ticket: WindowTicket
  }

/** A fatal error stops the run; the event is left not attempted, with the error's tag. */
export const stopOnFatal = (state: RunState) => (error: FatalError) =>
  Effect.as(state.stop({ _tag: "Fatal", error }), {
    outcome: "not-attempted",
    error: error._tag,
    reason: error.message
  } as const)

/** Counts the outcome, and logs what a reader must act on (a dead letter, a partial update), email masked. */
export const logResult = (r: Result, mapped: string, email: string | undefined, position: Item["position"]) => {
  const count = Metrics.countOutcome(mapped, r.outcome)
  const warning = warningOf(r, email, position)
  return warning === undefined ? count : Effect.zipRight(count, warning)
}

/**
 * `logResult` for the per-event path: counts now (`labels`: the run's metric labels), and returns
 * the warning to log, if any (most events have none).
 */
export const logResultNow = (
  r: Result,
  mapped: string,
  email: string | undefined,
  position: Item["position"],
  labels: ReadonlyArray<MetricLabel.MetricLabel>
): Effect.Effect<void> | undefined => {
  Metrics.countOutcomeNow(mapped, r.outcome, labels)
  return warningOf(r, email, position)
}

const warningOf = (r: Result, email: string | undefined, position: Item["position"]): Effect.Effect<void> | undefined => {
  const o = r.outcome
  const warning = o.outcome === "dead-lettered"
    ? { message: `dead-lettered: ${o.reason}`, error: o.error }
    : o.outcome === "delivered" && o.partial !== undefined
    ? { message: `delivered without ${o.partial.properties.join(", ")}, dead-lettered on their own: ${o.partial.reason}`, error: o.partial.error }
    : undefined
  if (warning === undefined) return undefined
  return Effect.logWarning(warning.message).pipe(
    Effect.annotateLogs({
      ...(position === undefined ? { line: r.line } : position),
      event: r.event ?? "?",
      error: warning.error,
      ...(email === undefined ? {} : { email: Metrics.maskEmail(email) })
    })
  )
}

/** A prepared update without its parsed event, while it has its text to read it again from. */
export const stripRaw = (p: Prepared): Prepared => p._tag === "Send" && p.text !== undefined && p.raw !== undefined ? { ...p, raw: undefined } : p

/**
 * A result whose text (from a window's pack) and parsed event are read again when someone asks for
 * them. The getters are the prototype's: thousands of results of a window wait to be written.
 */
class LazyRaw implements Result {
  #raw: unknown = undefined
  readonly #source: string | WindowPack
  readonly #index: number
  constructor(
    readonly line: number,
    source: string | WindowPack,
    index: number,
    readonly messageId: string | undefined,
    readonly event: string | undefined,
    readonly outcome: Outcome
  ) {
    this.#source = source
    this.#index = index
  }
  get text(): string | undefined {
    return typeof this.#source === "string" ? this.#source : this.#source.text(this.#index)
  }
  get raw(): unknown {
    if (this.#raw !== undefined) return this.#raw
    const text = this.text
    return this.#raw = text === undefined ? undefined : JSON.parse(text)
  }
}
/** An update's result, read back from its window's pack (which holds its text): one object, not two. */
export const packedResult = (p: PackedSend, outcome: Outcome, pack: WindowPack, index: number): Result =>
  new LazyRaw(p.line, pack, index, p.messageId, p.event, outcome)

/** A result that gave up its parsed event (and, in a window, its text): read again on demand. */
export const lazyRaw = (r: Result, pack?: WindowPack, index = 0): Result =>
  r.raw !== undefined
    ? r
    : r.text !== undefined
    ? new LazyRaw(r.line, r.text, 0, r.messageId, r.event, r.outcome)
    : pack === undefined
    ? r
    : new LazyRaw(r.line, pack, index, r.messageId, r.event, r.outcome)
