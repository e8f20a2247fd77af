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
import type { PackedSend, Prepared } from "../Delivery/Prepare.js"
import type { Packed } from "../Delivery/WindowPack.js"
import { Action } from "../Preset/Preset.js"
import { wellFormed, withRoom } from "./textPieces.js"

/** A record's actions are their places here. */
const ACTIONS: ReadonlyArray<Action> = Action.literals

/** A record's first byte. */
const SERIALIZED = 0
const USUAL = 1

/**
 * A string's length with this bit set is a reference instead: the piece's nth event or mapped name
 * so far (a piece of 512 decisions has a handful of them). Lines are at most 1 MiB, so no string
 * of a record comes near 2 GB.
 */
const SAME = 0x80000000

const EXPLICIT = 1
const EVENT_AT = 2
const MESSAGE_ID = 4
const TIMESTAMP = 8

/** The keys of the usual update, `timestamp` aside. */
const USUAL_KEYS = 13

/** An update as decided, or as a pack gives it back. */
type Send = Extract<Prepared, { _tag: "Send" }> | PackedSend

/** The usual update: its keys exactly those `prepare` gives it, its strings ones UTF-8 can carry. */
const isUsual = (p: Send): boolean => {
  const { eventAt, line, messageId } = p
  const timestamp = (p as { readonly timestamp?: unknown }).timestamp
  const stamped = "timestamp" in p
  if (
    p.partial !== undefined || !Number.isInteger(line) || line < 0 || line > 0xffffffff ||
    (eventAt !== undefined && typeof eventAt !== "number") || typeof p.explicit !== "boolean" ||
    !ACTIONS.includes(p.action) || !ACTIONS.includes(p.body.Action) ||
    (messageId !== undefined && (typeof messageId !== "string" || !wellFormed(messageId))) ||
    (stamped && (typeof timestamp !== "string" || !wellFormed(timestamp))) ||
    typeof p.event !== "string" || typeof p.mapped !== "string" || typeof p.email !== "string" ||
    !wellFormed(p.event) || !wellFormed(p.mapped) || !wellFormed(p.email)
  ) return false
  // Nothing added on the way (a note, a replay, a demotion, an erasure): exactly its keys.
  let keys = 0
  for (const _ in p) keys++
  return keys === USUAL_KEYS + (stamped ? 1 : 0)
}

/**
 * Writes a piece's records into one buffer, reused from piece to piece. An update is written as a
 * pack gives it back (`Packed`): without its text and parsed event, its body its action alone.
 */
export class RecordsWriter {
  /** Grown as a piece needs, kept for the next. */
  private bytes = Buffer.allocUnsafe(1024)
  private used = 0
  /** The piece's event and mapped names so far, by their place: written once, then referred to. */
  private readonly names = new Map<string, number>()

  add(p: Prepared | Packed): void {
    if (p._tag !== "Send" || !isUsual(p)) {
      const v = V8.serialize(p._tag === "Send" ? { ...p, raw: undefined, text: undefined, body: { Action: p.body.Action } } : p)
      this.room(5 + v.length)
      this.bytes[this.used++] = SERIALIZED
      this.used = this.bytes.writeUInt32LE(v.length, this.used)
      this.used += v.copy(this.bytes, this.used)
      return
    }
    const timestamp = (p as { readonly timestamp?: string }).timestamp
    this.room(16 + 4 * 5 + 3 * (p.event.length + p.mapped.length + p.email.length + (p.messageId?.length ?? 0) + (timestamp?.length ?? 0)))
    const b = this.bytes
    b[this.used++] = USUAL
    b[this.used++] = (p.explicit ? EXPLICIT : 0) | (p.eventAt !== undefined ? EVENT_AT : 0) | (p.messageId !== undefined ? MESSAGE_ID : 0) |
      (timestamp !== undefined ? TIMESTAMP : 0)
    b[this.used++] = ACTIONS.indexOf(p.action)
    b[this.used++] = ACTIONS.indexOf(p.body.Action)
    this.used = b.writeUInt32LE(p.line, this.used)
    if (p.eventAt !== undefined) this.used = b.writeDoubleLE(p.eventAt, this.used)
    if (p.messageId !== undefined) this.text(p.messageId)
    this.name(p.event)
    this.name(p.mapped)
    this.text(p.email)
    if (timestamp !== undefined) this.text(timestamp)
  }

  /** The piece's records; the writer starts the next piece. */
  take(): Buffer {
    const piece = this.bytes.subarray(0, this.used)
    this.used = 0
    this.names.clear()
    return piece
  }

  private name(s: string): void {
    const k = this.names.get(s)
    if (k !== undefined) this.used = this.bytes.writeUInt32LE(SAME + k, this.used)
    else {
      this.names.set(s, this.names.size)
      this.text(s)
    }
  }

  private text(s: string): void {
    const n = this.bytes.write(s, this.used + 4, "utf8")
    this.bytes.writeUInt32LE(n, this.used)
    this.used += 4 + n
  }

  private room(n: number): void {
    this.bytes = withRoom(this.bytes, this.used, n)
  }
}

/** A piece read from its start: its strings are length-prefixed UTF-8. */
class Cursor {
  at = 0
  /** The piece's event and mapped names so far (RecordsWriter `name`). */
  private readonly names: Array<string> = []
  constructor(readonly b: Buffer) {}
  name(): string {
    const n = this.b.readUInt32LE(this.at)
    if (n < SAME) {
      const s = this.text()
      this.names.push(s)
      return s
    }
    this.at += 4
    return this.names[n - SAME]!
  }
  text(): string {
    const n = this.b.readUInt32LE(this.at)
    this.at += 4 + n
    return this.b.toString("utf8", this.at - n, this.at)
  }
}

/** The first `count` records of a piece, in order. */
export function* readRecords(b: Buffer, count: number): Generator<Packed> {
  const c = new Cursor(b)
  for (let k = 0; k < count; k++) {
    if (b[c.at++] === SERIALIZED) {
      const n = b.readUInt32LE(c.at)
      c.at += 4 + n
      yield V8.deserialize(b.subarray(c.at - n, c.at)) as Packed
      continue
    }
    const at = c.at
    const flags = b[at]!
    const action = ACTIONS[b[at + 1]!]!
    const Action = ACTIONS[b[at + 2]!]!
    const line = b.readUInt32LE(at + 3)
    c.at += 7
    let eventAt: number | undefined
    if ((flags & EVENT_AT) !== 0) {
      eventAt = b.readDoubleLE(c.at)
      c.at += 8
    }
    const messageId = (flags & MESSAGE_ID) !== 0 ? c.text() : undefined
    const event = c.name()
    const mapped = c.name()
    const email = c.text()
    const explicit = (flags & EXPLICIT) !== 0
    const body = { Action }
    yield (flags & TIMESTAMP) !== 0
      ? { _tag: "Send", line, raw: undefined, text: undefined, messageId, event, mapped, email, action, explicit, eventAt, timestamp: c.text(), body, partial: undefined }
      : { _tag: "Send", line, raw: undefined, text: undefined, messageId, event, mapped, email, action, explicit, eventAt, body, partial: undefined }
  }
}
