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

/** Kept as numbers. A class, not a closure: a closure beside one over the items would keep them too. */
class HeldLines<M> implements HeldItems<M> {
  constructor(private readonly lines: Float64Array) {}
  get length(): number {
    return this.lines.length
  }
  at(i: number): M {
    return { line: this.lines[i]!, text: "" } as M
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
    return { line: this.first + i, text: "" } as M
  }
}

export const holdItems = <M>(items: ReadonlyArray<M>): HeldItems<M> => {
  if (!items.every(lineOnly)) return new HeldAsTheyAre(items)
  const lines = new Float64Array(items.length)
  let run = true
  for (let i = 0; i < items.length; i++) {
    lines[i] = (items[i] as { readonly line: number }).line
    run &&= lines[i] === lines[0]! + i
  }
  return run && items.length > 0 ? new HeldRun(lines[0]!, items.length) : new HeldLines(lines)
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
