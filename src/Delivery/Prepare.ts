/**
 * What delivery decides for each event before any I/O, in input order: decode, consent, map, fit
 * the values to Mailjet's datatypes, apply suppressions; and what a refusal or a replay leaves to
 * send. Pure and synchronous, so `--dry-run` shows exactly what would be sent.
 */
import * as Context from "effect/Context"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import type { Outcome, PartialUpdate, Result } from "../Domain/Outcome.js"
import { keptByReference } from "../Domain/Outcome.js"
import type { SignalEvent } from "../Domain/SignalEvent.js"
import { eventLabel, rawMessageId, readSignalLine } from "../Domain/SignalEvent.js"
import type { ManageContactBody } from "../Mailjet/MailjetClient.js"
import { eventKey, Mapping, requestBody } from "../Mapping.js"
import type { Datatype } from "../Preset/Datatypes.js"
import { coerceValue, fitProperties } from "../Preset/Datatypes.js"
import type { Action, Preset } from "../Preset/Preset.js"
import { LAST_EVENT_PROPERTY } from "../Preset/PropertyTypes.js"
import { type SuppressionSet, UnsubscribedByLine } from "../Suppressions.js"
import { eventTime, type TombstoneSet, tombstoneVerdict, unsubscribedBeforeErasure } from "../Domain/Tombstones.js"
import * as Metrics from "./Metrics.js"

/** One input event as a run reads it. */
export interface Item {
  readonly line: number
  readonly text: string
  /** A replayed dead letter of refused properties: send only these (see `onlyProperties`). */
  readonly only?: ReadonlyArray<string> | undefined
  /** A replayed event: what Mailjet holds decides what of it may still apply (see ReplayGuard). */
  readonly replay?: boolean | undefined
  /** The line was over the reader's bound: its size, and no text. */
  readonly tooLong?: number | undefined
  /** A Kafka record whose batch could not be decoded: why, and no text (see Kafka/Codecs). */
  readonly undecodable?: string | undefined
  /** A Kafka record's position: logged as `partition=… offset=…` instead of its `line`. */
  readonly position?: { readonly partition: number; readonly offset: string } | undefined
}

/** What `prepare` decides before any I/O: a final outcome, or a request to send. */
export type Prepared =
  | {
    readonly _tag: "Done"
    readonly result: Result
    /** The preset's name of the event, when it has one: the metric tag of a drop (else "unmapped"). */
    readonly mapped?: string
  }
  | {
    readonly _tag: "Send"
    readonly line: number
    readonly raw: unknown
    readonly text: string | undefined
    readonly messageId: string | undefined
    readonly event: string
    /** The preset's name of the event: bounded, fit for a metric tag. */
    readonly mapped: string
    readonly email: string
    readonly action: Action
    readonly body: ManageContactBody
    /** Properties already left out because their values cannot be sent. */
    readonly partial: PartialUpdate | undefined
    /** Said on the outcome line when the action sent is not the event's own. */
    readonly note?: string
    /** The preset fixes the action: not standing consent (see Suppressions). */
    readonly explicit: boolean
    /** When the event happened (ms), if it says: what places a replay (see ReplayGuard). */
    readonly eventAt: number | undefined
    /** A replay, of the whole event or of its refused properties alone: guarded before it is sent. */
    readonly replay?: "event" | "properties"
    readonly demoted?: string
    /**
     * A deletion request: the contact is erased (internal/erase.ts), never sent in a bulk job; its
     * body (`remove`, no properties) only keeps the shape every update has.
     */
    readonly erase?: true
    /** The event's own `timestamp`, as given: read only for a contact that was erased (Tombstones). */
    readonly timestamp?: string
  }

/**
 * An update as a bulk window's pack gives it back (WindowPack `each`): its body is its action alone,
 * its contact is in the pack as its job sends it. Suppressions and demotions change only the action.
 */
export type PackedSend = Omit<Extract<Prepared, { _tag: "Send" }>, "body"> & { readonly body: Pick<ManageContactBody, "Action"> }

/**
 * Decode, consent, map and fit the values to `datatypes`. Pure and synchronous, so it runs in
 * input order, and `--dry-run` shows exactly what would be sent.
 */
export const prepare = (
  input: {
    readonly line: number
    readonly raw: unknown
    /** The line as read; absent for a value handed to `deliver`. */
    readonly text?: string
    readonly event: Either.Either<SignalEvent, string>
  },
  resolveConsent: (e: SignalEvent) => "Granted" | "Withdrawn" | "Unknown",
  preset: Preset,
  map: Context.Tag.Service<Mapping>["map"],
  datatypes: ReadonlyMap<string, Datatype>
): Prepared => {
  const { line, raw } = input
  const text = input.text
  const messageId = rawMessageId(raw)
  const done = (event: string | undefined, outcome: Outcome): Prepared => ({
    _tag: "Done",
    result: { line, raw, text, messageId, event, outcome }
  })
  if (Either.isLeft(input.event)) {
    const reason = Metrics.maskEmails(keptByReference(raw) ?? input.event.left)
    return done(undefined, { outcome: "dead-lettered", error: "MalformedEvent", reason, attempts: 0 })
  }
  const event = input.event.right
  const label = eventLabel(event)
  const mapped = map(event, resolveConsent(event))
  if (mapped._tag === "Dropped") {
    const name = preset.events.get(eventKey(event) ?? "")?.name
    const result: Result = { line, raw, text, messageId, event: label, outcome: { outcome: "dropped", reason: mapped.reason } }
    return name === undefined ? { _tag: "Done", result } : { _tag: "Done", result, mapped: name }
  }
  const ts = event.timestamp === undefined ? {} : { timestamp: event.timestamp }
  if (mapped._tag === "Erase") {
    const { email } = mapped
    const name = preset.events.get(eventKey(event)!)?.name ?? label
    const body = { Email: email, Action: "remove" } as const
    return { _tag: "Send", line, raw, text, messageId, event: label, mapped: name, email, action: "remove", explicit: true, eventAt: undefined, body, partial: undefined, erase: true, ...ts }
  }
  const { upsert } = mapped
  // Once Mailjet has the marker, every update says when its event happened; without it nothing
  // reads the time (a replay then lets what Mailjet holds win), so it is not parsed.
  const at = event.timestamp === undefined || !datatypes.has(LAST_EVENT_PROPERTY)
    ? undefined
    : coerceValue("datetime", event.timestamp)
  const eventAt = at === undefined || Either.isLeft(at) ? undefined : Date.parse(String(at.right))
  const { fitted, rejected } = fitProperties(
    eventAt !== undefined
      ? { ...upsert.properties, [LAST_EVENT_PROPERTY]: new Date(eventAt).toISOString() }
      : upsert.properties,
    datatypes
  )
  return {
    _tag: "Send",
    line,
    raw,
    text,
    messageId,
    event: label,
    mapped: preset.events.get(eventKey(event)!)?.name ?? label,
    email: upsert.email,
    action: upsert.action,
    explicit: upsert.explicit,
    eventAt,
    ...ts,
    body: requestBody(upsert, fitted) as unknown as ManageContactBody,
    partial: rejected.length === 0 ? undefined : {
      properties: rejected.map((r) => r.name),
      error: "InvalidContact",
      reason: `${rejected.map((r) => r.reason).join("; ")}; fix the event or the property's datatype, then replay`
    }
  }
}

/** `prepare` for one NDJSON line: what `run`, `--dry-run` and the benchmark all start from. */
export const prepareLine = (
  text: string,
  line: number,
  resolveConsent: (e: SignalEvent) => "Granted" | "Withdrawn" | "Unknown",
  mapping: Context.Tag.Service<Mapping>,
  datatypes: ReadonlyMap<string, Datatype>
): Prepared => {
  const { event, raw } = readSignalLine(text)
  return prepare({ line, raw, text, event }, resolveConsent, mapping.preset, mapping.map, datatypes)
}

/** A sent event's result, once its outcome is known. */
export const resultOf = (p: Pick<Extract<Prepared, { _tag: "Send" }>, "line" | "raw" | "text" | "messageId" | "event">, outcome: Outcome): Result => ({
  line: p.line,
  raw: p.raw,
  text: p.text,
  messageId: p.messageId,
  event: p.event,
  outcome
})

/**
 * A dead letter of refused properties (`only`), replayed: those properties alone, with `addnoforce`,
 * which leaves the subscription as it is, since the event's action landed when it was first sent.
 */
export const onlyProperties = (p: Extract<Prepared, { _tag: "Send" }>, only: ReadonlyArray<string>): Prepared => {
  const result = (outcome: Outcome): Prepared => ({ _tag: "Done", result: resultOf(p, outcome) })
  // Sending properties needs an action on the list, and this event took the contact out of it.
  if (p.action === "remove") return result({ outcome: "dropped", reason: "the event removed the contact from the list; its properties are not sent again" })
  const names = new Set(only.map((n) => n.toLowerCase()))
  const kept = Object.entries(p.body.Properties ?? {}).filter(([name]) => names.has(name.toLowerCase()))
  const refused = p.partial?.properties.filter((name) => names.has(name.toLowerCase())) ?? []
  if (kept.length === 0 && refused.length === 0) {
    return result({ outcome: "dropped", reason: "none of the dead-lettered properties is mapped from this event any more" })
  }
  const { Properties: _, ...rest } = p.body
  return {
    ...p,
    action: "addnoforce",
    replay: "properties",
    note: `replayed properties only (${only.join(", ")}); the event's own action (${p.action}) landed when it was first delivered`,
    body: { ...rest, Action: "addnoforce", ...(kept.length === 0 ? {} : { Properties: Object.fromEntries(kept) }) },
    partial: refused.length === 0 ? undefined : { ...p.partial!, properties: refused }
  }
}

/**
 * Standing consent (`addforce` from consent granted on an ordinary event) does not re-subscribe a
 * suppressed contact: it is sent as `addnoforce`, which updates the contact and keeps the
 * unsubscribe. Called in input order; an `unsub` suppresses, an explicit `addforce` lifts. A
 * contact erased while unsubscribed is suppressed by its tombstone (its address is not kept); the
 * per-event path sends its `addnoforce` as `unsub`, since it is in no list any more (send.ts).
 */
export const applySuppressions = <S extends PackedSend>(p: S, suppressions: SuppressionSet, tombstones?: TombstoneSet): S => {
  const erased = tombstones?.get(p.email)
  // Dropped by send.ts, as older than an erasure of its contact: it changes nothing here either.
  if (erased !== undefined && tombstoneVerdict(erased.at, eventTime(p.timestamp)) !== undefined) return p
  if (p.erase === true) {
    // Undated: erased now, after any event's time.
    const at = eventTime(p.timestamp)
    tombstones?.pending(p.email, Number.isNaN(at) ? Infinity : at)
    return p
  }
  if (p.action === "unsub") {
    suppressions.add(p.email, new UnsubscribedByLine(p.line))
    return p
  }
  if (p.action !== "addforce") return p
  if (p.explicit) {
    // Older than an erasure decided before it, in its window: dropped once that is done.
    const pending = tombstones?.pendingAt(p.email)
    if (pending !== undefined && !(eventTime(p.timestamp) > pending)) return p
    suppressions.lift(p.email)
    tombstones?.lift(p.email)
    return p
  }
  const suppressed = suppressions.get(p.email)
  if (suppressed !== undefined) return demote(p, suppressed.reason)
  return erased?.unsub === true ? demote(p, unsubscribedBeforeErasure(erased)) : p
}

/** Standing consent held back by a suppression: not re-subscribed, and the outcome says why. */
export const demote = <S extends PackedSend>(p: S, reason: string): S => ({
  ...p,
  action: "addnoforce",
  body: { ...p.body, Action: "addnoforce" },
  demoted: reason
})

/** Physical line numbers, so they point into the file, for the lines that are not blank (no events). */
export const numbered = <E, R>(lines: Stream.Stream<string | { readonly tooLong: number }, E, R>) =>
  Stream.suspend(() => {
    let physical = 0
    return lines.pipe(
      Stream.map((text): Item =>
        typeof text === "string" ? { text, line: ++physical } : { text: "", line: ++physical, tooLong: text.tooLong }
      ),
      Stream.filter(({ text, tooLong }) => tooLong !== undefined || text.trim() !== "")
    )
  })

/** An item as a run holds it while its event waits, for a caller that needs only results: they carry the text. */
export const withoutText = ({ line, position }: Item): Item => position === undefined ? { line, text: "" } : { line, text: "", position }

/** An item that was never read (too long, undecodable): dead-lettered by its place. */
export const unread = (line: number, error: string, reason: string): Prepared => ({
  _tag: "Done",
  result: {
    line,
    raw: undefined,
    text: undefined,
    messageId: undefined,
    event: undefined,
    outcome: { outcome: "dead-lettered", error, reason, attempts: 0 }
  }
})

/** A line over the reader's bound, which was never held: only its size is known. */
export const tooLong = (line: number, bytes: number): Prepared =>
  unread(
    line,
    "LineTooLong",
    `the line is ${bytes} bytes, over the bound on one line (--max-line-bytes); it was not read, so the dead letter names it by its line. Shorten the event at its source`
  )
