/**
 * What a bulk window holds while it is in flight: its items, and its demotions (HeldReasons).
 *
 * Its items: a file's or a stream's item is held as its line alone (`{ line, text: "" }`,
 * Prepare's `withoutText`): an object and a slot each, about 48 bytes an event, the largest part of
 * a held event once the window's contacts were hashes. Such items are kept as their line numbers,
 * 8 bytes each, and made again when the window's lines are written; any other item (a Kafka
 * record) is kept as it is. A window's lines usually follow one another: then they are its first
 * line and its length.
 */
import { grown } from "./textPieces.js"

/** Items by their place in the window. */
export interface HeldItems<M> {
  readonly length: number
  readonly at: (i: number) => M
}

/** An item that is its line alone: nothing of it is lost when it is kept as the number. */
const lineOnly = (m: unknown): m is { readonly line: number; readonly text: "" } => {
  if (typeof m !== "object" || m === null) return false
  const o = m as { readonly line?: unknown; readonly text?: unknown }
  if (o.text !== "" || typeof o.line !== "number") return false
  let keys = 0
  for (const _ in o) keys++
  return keys === 2
}

/** An item that was its line alone, made again: what Prepare's `withoutText` made of it. */
const lineItem = <M>(line: number): M => ({ line, text: "" }) as M

/** Kept as numbers. A class, not a closure: a closure beside one over the items would keep them too. */
class HeldLines<M> implements HeldItems<M> {
  constructor(private readonly lines: Float64Array) {}
  get length(): number {
    return this.lines.length
  }
  at(i: number): M {
    return lineItem(this.lines[i]!)
  }
}

class HeldAsTheyAre<M> implements HeldItems<M> {
  constructor(private readonly items: ReadonlyArray<M>) {}
  get length(): number {
    return this.items.length
  }
  at(i: number): M {
    return this.items[i]!
  }
}

/** Lines one after the other (a file's window, the usual case): its first line and its length alone. */
class HeldRun<M> implements HeldItems<M> {
  constructor(private readonly first: number, readonly length: number) {}
  at(i: number): M {
    return lineItem(this.first + i)
  }
}

/**
 * A gathering's items as they come, held as `holdItems` holds them: lines alone as their numbers
 * from the first, so none of them lives on as an object while the gathering fills (a window's
 * gathering lasts seconds: its items outlived the young generation, about 110 bytes promoted an
 * event with their array).
 */
export class HeldItemsBuilder<M> {
  #first = 0
  #length = 0
  /** Lines once they stop following one another (the first `#length` used). */
  #lines: Float64Array | undefined
  /** Every item as it is, once one is more than its line. */
  #items: Array<M> | undefined

  get length(): number {
    return this.#length
  }

  push(m: M): void {
    const i = this.#length++
    if (this.#items !== undefined) {
      this.#items.push(m)
      return
    }
    if (!lineOnly(m)) {
      const items: Array<M> = []
      for (let j = 0; j < i; j++) items.push(this.at(j))
      items.push(m)
      this.#items = items
      this.#lines = undefined
      return
    }
    const line = m.line
    if (this.#lines === undefined) {
      if (i === 0) this.#first = line
      if (line === this.#first + i) return
      this.#lines = new Float64Array(Math.max(64, 2 * i))
      for (let j = 0; j < i; j++) this.#lines[j] = this.#first + j
    } else if (i === this.#lines.length) this.#lines = grown(this.#lines, i + 1)
    this.#lines[i] = line
  }

  at(i: number): M {
    if (this.#items !== undefined) return this.#items[i]!
    return lineItem(this.#lines === undefined ? this.#first + i : this.#lines[i]!)
  }

  /** The items held; the builder starts over. */
  hold(): HeldItems<M> {
    const held = this.#items !== undefined
      ? new HeldAsTheyAre(this.#items)
      : this.#lines !== undefined
      ? new HeldLines<M>(this.#lines.slice(0, this.#length))
      : new HeldRun<M>(this.#first, this.#length)
    this.#first = 0
    this.#length = 0
    this.#lines = undefined
    this.#items = undefined
    return held
  }
}

export const holdItems = <M>(items: ReadonlyArray<M>): HeldItems<M> => {
  const builder = new HeldItemsBuilder<M>()
  for (const m of items) builder.push(m)
  return builder.hold()
}

/**
 * A window's demotions while its jobs run: the reason of each demoted update, by its place among
 * the window's updates. A backfill demotes about a third of them, and a reason is its own string
 * (`unsubscribed by the event on line N`): a string and a map entry each were about 80 bytes a
 * demoted event; one string for all and the places and ends as numbers are about half.
 */
export class HeldReasons {
  #places: Array<number> | Int32Array = []
  #ends: Array<number> | Int32Array = []
  #parts: Array<string> | undefined = []
  #text = ""

  /** Places are added in increasing order. */
  add(place: number, reason: string): void {
    const ends = this.#ends as Array<number>
    ;(this.#places as Array<number>).push(place)
    ends.push((ends.length === 0 ? 0 : ends[ends.length - 1]!) + reason.length)
    this.#parts!.push(reason)
  }

  /** Done adding: held as one string. */
  seal(): void {
    if (this.#parts === undefined) return
    this.#text = this.#parts.join("")
    this.#parts = undefined
    this.#places = Int32Array.from(this.#places)
    this.#ends = Int32Array.from(this.#ends)
  }

  get(place: number): string | undefined {
    this.seal()
    const places = this.#places
    let lo = 0
    let hi = places.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const p = places[mid]!
      if (p === place) return this.#text.slice(mid === 0 ? 0 : this.#ends[mid - 1]!, this.#ends[mid]!)
      if (p < place) lo = mid + 1
      else hi = mid - 1
    }
    return undefined
  }
}
