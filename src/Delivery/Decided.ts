/**
 * How a window's pack (WindowPack.ts) holds its decisions: two streams, each in pieces of V8's own
 * serialization (exact, unlike JSON), deflated. `lines` holds what an event's outcome line needs of
 * its decision (`Decided`): a window's lines read it alone, not its updates whole, which read back
 * twice were a fifth of what a bulk run allocated. `decided` holds the rest of each update (`Update`):
 * what its jobs read; its names and message ID are only in `lines`. An update's line is
 * packed as the step from the update before it (mostly one): deflated, next to nothing.
 */
import * as V8 from "node:v8"
import * as Zlib from "node:zlib"
import type { Prepared } from "./Prepare.js"

type Send = Extract<Prepared, { _tag: "Send" }>
type Done = Extract<Prepared, { _tag: "Done" }>

/** What an update's outcome line needs of it. */
export type SendLine = Pick<Send, "_tag" | "line" | "messageId" | "event" | "mapped" | "email" | "action" | "partial" | "note" | "demoted"> & {
  readonly body: Pick<Send["body"], "Action">
}
/** What an event's outcome line needs of its decision: a final outcome whole, an update its `SendLine`. */
export type Decided = Done | SendLine
/** What a window's jobs need of an update: all but its names and message ID. */
export type Update = Omit<Send, "event" | "mapped" | "messageId">

type Mutable<A> = { -readonly [K in keyof A]: A[K] }

/** A piece's serializer, its header written. */
export const serializer = (): V8.Serializer => {
  const s = new V8.DefaultSerializer()
  s.writeHeader()
  return s
}

/**
 * Writes one decision to both streams, an update without its text and parsed event (a final
 * outcome's are left out by the caller); `step` is an update's line less the last update's.
 */
export const writeDecision = (decided: V8.Serializer, lines: V8.Serializer, p: Prepared, step: number): void => {
  if (p._tag === "Done") {
    decided.writeValue(null)
    lines.writeValue(p)
    return
  }
  const { event, mapped, messageId, ...rest }: Mutable<Send> = p
  const line: Mutable<Partial<SendLine>> = {
    _tag: "Send", line: step, messageId, event, mapped, email: p.email, action: p.action, body: { Action: p.body.Action }, partial: p.partial
  }
  if (p.note !== undefined) line.note = p.note
  if (p.demoted !== undefined) line.demoted = p.demoted
  lines.writeValue(line)
  rest.line = step
  rest.raw = undefined
  rest.text = undefined
  decided.writeValue(rest)
}

/** The values of a stream's deflated pieces, `each` a piece, `size` in all; an update's line restored. */
const values = function*<A>(pieces: ReadonlyArray<Buffer>, each: number, size: number): Generator<A> {
  let i = 0
  let line = 0
  for (const piece of pieces) {
    const d = new V8.DefaultDeserializer(Zlib.inflateRawSync(piece))
    d.readHeader()
    for (let k = 0; k < each && i < size; k++, i++) {
      const v = d.readValue() as Mutable<SendLine> | null
      if (v !== null && v._tag === "Send") v.line = line += v.line
      yield v as A
    }
  }
}

/** Each event's update (null for a final outcome), in order, read a piece at a time: what its jobs need. */
export const readUpdates = (decided: ReadonlyArray<Buffer>, each: number, size: number): Generator<Update | null> =>
  values<Update | null>(decided, each, size)

/** What each event's line needs of its decision, in order, read a piece at a time. */
export const readLines = (lines: ReadonlyArray<Buffer>, each: number, size: number): Generator<Decided> =>
  values<Decided>(lines, each, size)

/** The decisions whole, in order, read a piece at a time from both streams. */
export const readDecisions = function*(decided: ReadonlyArray<Buffer>, lines: ReadonlyArray<Buffer>, each: number, size: number): Generator<Prepared> {
  const read = readLines(lines, each, size)
  for (const update of readUpdates(decided, each, size)) {
    const rest = update as Mutable<Send> | null
    const l = read.next().value!
    if (rest === null || l._tag === "Done") {
      yield l as Done
      continue
    }
    rest.messageId = l.messageId
    rest.event = l.event
    rest.mapped = l.mapped
    yield rest
  }
}
