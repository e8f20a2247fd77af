/**
 * A consumer stream read fairly: one fetch answer holds a run of records per partition (partition 0's
 * first), and read in that order a backlog on one partition delays every other. What the stream
 * holds is taken into one queue per partition and handed out a partition at a time, so each
 * partition's order is kept and none waits for another's backlog.
 *
 * Taken only once the queues are empty: the stream fetches again only when its buffer runs low, so
 * at most one fetch answer is held here and one more in the stream, whatever the backlog.
 */

/** What the fair reader needs of a Node Readable in object mode: its iterator and how much it holds. */
export interface Buffered<A> extends AsyncIterable<A> {
  readonly readableLength: number
}

/**
 * Never calls the stream iterator's return(), which would destroy the stream: the worker keeps it
 * open (holding the subscription) until the next run's stream replaces it.
 */
export const fairly = <A extends { readonly partition: number }>(
  source: Buffered<A>,
  /** Told how many records are held here, each time that changes. */
  onHeld: (held: number) => void = () => undefined
): AsyncIterable<A> => ({
  [Symbol.asyncIterator]: () => {
    const it = source[Symbol.asyncIterator]()
    const queues = new Map<number, Array<A>>()
    const turn: Array<number> = []
    let held = 0
    let done = false
    const take = (a: A) => {
      let q = queues.get(a.partition)
      if (q === undefined) {
        q = []
        queues.set(a.partition, q)
        turn.push(a.partition)
      }
      q.push(a)
      held++
    }
    // Each next() resolves at once for a record the stream holds (it was pushed by a fetch already).
    const takeHeld = async () => {
      while (!done && source.readableLength > 0) {
        const r = await it.next()
        if (r.done === true) done = true
        else take(r.value)
      }
    }
    return {
      next: async (): Promise<IteratorResult<A>> => {
        if (held === 0 && !done) {
          const r = await it.next()
          if (r.done === true) done = true
          else take(r.value)
          await takeHeld()
        }
        if (held === 0) {
          onHeld(0)
          return { done: true, value: undefined }
        }
        // The partition whose turn it is goes to the back of the line.
        const partition = turn.shift()!
        const q = queues.get(partition)!
        const value = q.shift()!
        if (q.length === 0) queues.delete(partition)
        else turn.push(partition)
        held--
        onHeld(held)
        return { done: false, value }
      }
    }
  }
})
