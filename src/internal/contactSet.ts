/**
 * A bulk window's contacts while it is in flight, as hashes of their emails in one typed array:
 * 16 bytes a contact. A ticket each (an object, a Deferred of a shape of its own, a map entry and
 * the email) held about 500 bytes a contact while a window's jobs ran (BENCHMARKS.md, "Long jobs").
 *
 * A set answers "may hold": two emails with one hash read as one contact. Order only ever waits on
 * it, so a collision makes a contact wait for a window it is not in (over-ordering), never lets one
 * overtake its own earlier events.
 */

import { hashEmail, hashHi, hashLo } from "../Domain/EmailHash.js"

/** An email's hash: 53 bits, exact in a double, never 0 (an empty slot). */
export type EmailHash = (email: string) => number

/** Its 64-bit hash (Domain/EmailHash) cut to 53 bits. */
export const emailHash: EmailHash = (s) => {
  hashEmail(s)
  return (hashHi & 0x1fffff) * 4294967296 + hashLo || 1
}

/** Hashes, open addressing, at most half full: sized for the window's contacts, grown if more come. */
export class ContactSet {
  size = 0
  private slots: Float64Array
  private mask: number

  /** Room for `expected` hashes. */
  constructor(expected: number) {
    let capacity = 8
    while (capacity < expected * 2) capacity *= 2
    this.slots = new Float64Array(capacity)
    this.mask = capacity - 1
  }

  /** Adds a hash (from an EmailHash: not 0). */
  add(h: number): void {
    if ((this.size + 1) * 2 > this.slots.length) this.grow()
    let j = (h >>> 0) & this.mask
    while (this.slots[j] !== 0) {
      if (this.slots[j] === h) return
      j = (j + 1) & this.mask
    }
    this.slots[j] = h
    this.size++
  }

  has(h: number): boolean {
    for (let j = (h >>> 0) & this.mask; this.slots[j] !== 0; j = (j + 1) & this.mask) {
      if (this.slots[j] === h) return true
    }
    return false
  }

  private grow(): void {
    const old = this.slots
    this.slots = new Float64Array(old.length * 2)
    this.mask = this.slots.length - 1
    this.size = 0
    for (const h of old) if (h !== 0) this.add(h)
  }
}
