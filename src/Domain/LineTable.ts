import { hashEmail, hashHi, hashLo } from "./EmailHash.js"

/**
 * Email → line, for a run's own unsubscribes, by a 64-bit hash of the email in typed arrays: 23 to
 * 34 bytes a contact where a Map of strings took 76, so a backfill of millions of contacts fits
 * the CLI's heap. Two emails with one hash (odds near 1 in 10^7 at two million contacts) would make
 * the second read as unsubscribed: its standing consent demoted, never a re-subscribe.
 */
export class LineTable {
  size = 0
  /** Full or deleted slots: the table grows before probes get long. */
  private used = 0
  private hi = new Uint32Array(64)
  private lo = new Uint32Array(64)
  private lines = new Float64Array(64)
  /** 0 empty, 1 full, 2 deleted. */
  private state = new Uint8Array(64)

  get(email: string): number | undefined {
    const i = this.find(email)
    return i < 0 ? undefined : this.lines[i]
  }

  /** False when `email` was there already (its line is replaced). */
  set(email: string, line: number): boolean {
    const i = this.find(email)
    if (i >= 0) {
      this.lines[i] = line
      return false
    }
    const capacity = this.state.length
    // Three quarters full (deleted slots count): half again as large, or as large without them.
    if ((this.used + 1) * 4 > capacity * 3) this.rehash((this.size + 1) * 2 > capacity ? Math.floor(capacity * 1.5) : capacity)
    let j = this.home(hashLo)
    while (this.state[j] === 1) j = this.next(j)
    if (this.state[j] === 0) this.used++
    this.put(j, hashHi, hashLo, line)
    this.size++
    return true
  }

  delete(email: string): boolean {
    const i = this.find(email)
    if (i < 0) return false
    this.state[i] = 2
    this.size--
    return true
  }

  /** The slot holding `email`, or -1; leaves its hash in hashHi/hashLo. */
  private find(email: string): number {
    hashEmail(email)
    for (let j = this.home(hashLo); this.state[j] !== 0; j = this.next(j)) {
      if (this.state[j] === 1 && this.hi[j] === hashHi && this.lo[j] === hashLo) return j
    }
    return -1
  }

  /**
   * A hash's first slot, for any capacity (Lemire's multiply-shift): growing by half instead of
   * doubling holds a backfill's two hundred thousand unsubscribes in 5 MB instead of 9.
   */
  private home(lo: number): number {
    return Math.floor(lo * this.state.length / 4294967296)
  }

  private next(j: number): number {
    return j + 1 === this.state.length ? 0 : j + 1
  }

  private put(j: number, hi: number, lo: number, line: number) {
    this.hi[j] = hi
    this.lo[j] = lo
    this.lines[j] = line
    this.state[j] = 1
  }

  private rehash(capacity: number) {
    const { hi, lo, lines, state } = this
    this.hi = new Uint32Array(capacity)
    this.lo = new Uint32Array(capacity)
    this.lines = new Float64Array(capacity)
    this.state = new Uint8Array(capacity)
    this.used = this.size
    for (let i = 0; i < state.length; i++) {
      if (state[i] !== 1) continue
      let j = this.home(lo[i]!)
      while (this.state[j] !== 0) j = this.next(j)
      this.put(j, hi[i]!, lo[i]!, lines[i]!)
    }
  }
}
