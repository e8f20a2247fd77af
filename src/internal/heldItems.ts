/**
 * A bulk window's items while it is in flight. A file's or a stream's item is held as its line
 * alone (`{ line, text: "" }`, Prepare's `withoutText`): an object and a slot each, about 48 bytes
 * an event, the largest part of a held event once the window's contacts were hashes. Such items
 * are kept as their line numbers, 8 bytes each, and made again when the window's lines are written;
 * any other item (a Kafka record) is kept as it is.
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

export const holdItems = <M>(items: ReadonlyArray<M>): HeldItems<M> => {
  if (!items.every(lineOnly)) return new HeldAsTheyAre(items)
  const lines = new Float64Array(items.length)
  for (let i = 0; i < items.length; i++) lines[i] = (items[i] as { readonly line: number }).line
  return new HeldLines(lines)
}
