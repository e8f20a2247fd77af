/**
 * A bulk window's decisions as records of our own (WindowPack). V8's serializer wrote every
 * property's name with every decision and read each back as a new object through its generic
 * path: the pack's decisions, read two or three times a window, were the largest allocation and
 * promotion site of a backfill. The usual update (its fields as `prepare` makes them, nothing
 * added on the way) is written field by field; anything else (a drop, a dead letter, a partial
 * update, a replay, a demotion, an erasure, a string UTF-8 cannot carry) is left to V8's serializer,
 * which is exact.
 */
import * as V8 from "node:v8"
import type { Action } from "../Preset/Preset.js"
import type { PackedSend } from "../Delivery/Prepare.js"
import type { Packed } from "../Delivery/WindowPack.js"

const ACTIONS: ReadonlyArray<Action> = ["addforce", "addnoforce", "unsub", "remove"]

/** A record's first byte. */
const SERIALIZED = 0
const USUAL = 1

const EXPLICIT = 1
const EVENT_AT = 2
const MESSAGE_ID = 4
const TIMESTAMP = 8

/** The keys of the usual update, `timestamp` aside. */
const USUAL_KEYS = 13

const wellFormed = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()

/** The usual update, or undefined when only V8's serializer can keep it exactly. */
const usual = (p: Packed): PackedSend | undefined => {
  if (p._tag !== "Send") return undefined
  const { eventAt, line, messageId } = p
  const timestamp = (p as { readonly timestamp?: unknown }).timestamp
  const stamped = "timestamp" in p
  if (
    p.partial !== undefined || p.raw !== undefined || p.text !== undefined ||
    !Number.isInteger(line) || line < 0 || line > 0xffffffff ||
    (eventAt !== undefined && typeof eventAt !== "number") || typeof p.explicit !== "boolean" ||
    !ACTIONS.includes(p.action) || !ACTIONS.includes(p.body.Action) || Object.keys(p.body).length !== 1 ||
    (messageId !== undefined && (typeof messageId !== "string" || !wellFormed(messageId))) ||
    (stamped && (typeof timestamp !== "string" || !wellFormed(timestamp))) ||
    typeof p.event !== "string" || typeof p.mapped !== "string" || typeof p.email !== "string" ||
    !wellFormed(p.event) || !wellFormed(p.mapped) || !wellFormed(p.email) ||
    // Nothing added on the way (a note, a replay, a demotion, an erasure): exactly its keys.
    Object.keys(p).length !== USUAL_KEYS + (stamped ? 1 : 0)
  ) return undefined
  return p
}

/** Writes a piece's records into one buffer, reused from piece to piece. */
export class RecordsWriter {
  /** Grown as a piece needs, kept for the next. */
  private bytes = Buffer.allocUnsafe(1024)
  private used = 0

  add(p: Packed): void {
    const u = usual(p)
    if (u === undefined) {
      const v = V8.serialize(p)
      this.room(5 + v.length)
      this.bytes[this.used++] = SERIALIZED
      this.used = this.bytes.writeUInt32LE(v.length, this.used)
      this.used += v.copy(this.bytes, this.used)
      return
    }
    const timestamp = (u as { readonly timestamp?: string }).timestamp
    this.room(16 + 4 * 5 + 3 * (u.event.length + u.mapped.length + u.email.length + (u.messageId?.length ?? 0) + (timestamp?.length ?? 0)))
    const b = this.bytes
    b[this.used++] = USUAL
    b[this.used++] = (u.explicit ? EXPLICIT : 0) | (u.eventAt !== undefined ? EVENT_AT : 0) | (u.messageId !== undefined ? MESSAGE_ID : 0) |
      (timestamp !== undefined ? TIMESTAMP : 0)
    b[this.used++] = ACTIONS.indexOf(u.action)
    b[this.used++] = ACTIONS.indexOf(u.body.Action)
    this.used = b.writeUInt32LE(u.line, this.used)
    if (u.eventAt !== undefined) this.used = b.writeDoubleLE(u.eventAt, this.used)
    if (u.messageId !== undefined) this.text(u.messageId)
    this.text(u.event)
    this.text(u.mapped)
    this.text(u.email)
    if (timestamp !== undefined) this.text(timestamp)
  }

  /** The piece's records; the writer starts the next piece. */
  take(): Buffer {
    const piece = this.bytes.subarray(0, this.used)
    this.used = 0
    return piece
  }

  private text(s: string): void {
    const n = this.bytes.write(s, this.used + 4, "utf8")
    this.bytes.writeUInt32LE(n, this.used)
    this.used += 4 + n
  }

  private room(n: number): void {
    if (this.used + n <= this.bytes.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + n))
    this.bytes.copy(grown, 0, 0, this.used)
    this.bytes = grown
  }
}

/** The first `count` records of a piece, in order. */
export function* readRecords(b: Buffer, count: number): Generator<Packed> {
  let at = 0
  const text = () => {
    const n = b.readUInt32LE(at)
    at += 4 + n
    return b.toString("utf8", at - n, at)
  }
  for (let k = 0; k < count; k++) {
    if (b[at++] === SERIALIZED) {
      const n = b.readUInt32LE(at)
      at += 4 + n
      yield V8.deserialize(b.subarray(at - n, at)) as Packed
      continue
    }
    const flags = b[at]!
    const action = ACTIONS[b[at + 1]!]!
    const Action = ACTIONS[b[at + 2]!]!
    const line = b.readUInt32LE(at + 3)
    at += 7
    let eventAt: number | undefined
    if ((flags & EVENT_AT) !== 0) {
      eventAt = b.readDoubleLE(at)
      at += 8
    }
    const messageId = (flags & MESSAGE_ID) !== 0 ? text() : undefined
    const event = text()
    const mapped = text()
    const email = text()
    const explicit = (flags & EXPLICIT) !== 0
    const body = { Action }
    yield (flags & TIMESTAMP) !== 0
      ? { _tag: "Send", line, raw: undefined, text: undefined, messageId, event, mapped, email, action, explicit, eventAt, timestamp: text(), body, partial: undefined }
      : { _tag: "Send", line, raw: undefined, text: undefined, messageId, event, mapped, email, action, explicit, eventAt, body, partial: undefined }
  }
}
