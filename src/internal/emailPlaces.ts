/**
 * A bulk window's contacts while it gathers, by email: each one's first update's place, in typed
 * arrays. Held in a Map of strings, a window's table and its emails (about 110 bytes a contact)
 * outlived the young generation while the window gathered, and were promoted.
 *
 * Exact, unlike a ContactSet: its places say which updates are one contact's, so two emails with
 * one hash are told apart by their UTF-16 units, kept one after another.
 */
import { type EmailHash, emailHash } from "./contactSet.js"
import { grown } from "./textPieces.js"

export class EmailPlaces {
  /** Distinct contacts, in the order they came. */
  size = 0
  /** By slot: 1 + the contact's number, 0 for none. At most half full. */
  private slots = new Int32Array(16)
  /** By contact: its hash, its first update's place, and where its email ends in `units`. */
  private hashes = new Float64Array(8)
  private firsts = new Int32Array(8)
  private ends = new Int32Array(8)
  private units = new Uint16Array(256)
  /** `hash` is the order's (a test's may collide on purpose). */
  constructor(private readonly hash: EmailHash = emailHash) {}

  /** The place of the first update of this email; `place` when it is new, and it is added. */
  placeOf(email: string, place: number): number {
    const h = this.hash(email)
    const mask = this.slots.length - 1
    let j = (h >>> 0) & mask
    for (let s = this.slots[j]!; s !== 0; s = this.slots[j]!) {
      if (this.hashes[s - 1] === h && this.is(s - 1, email)) return this.firsts[s - 1]!
      j = (j + 1) & mask
    }
    const k = this.size++
    this.slots[j] = k + 1
    if (k === this.hashes.length) this.growContacts()
    this.hashes[k] = h
    this.firsts[k] = place
    const start = k === 0 ? 0 : this.ends[k - 1]!
    if (start + email.length > this.units.length) this.units = grown(this.units, start + email.length)
    for (let i = 0; i < email.length; i++) this.units[start + i] = email.charCodeAt(i)
    this.ends[k] = start + email.length
    if (this.size * 2 > this.slots.length) this.growSlots()
    return place
  }

  /** The contacts' hashes, in the order they came (a view: valid until `clear`). */
  contactHashes(): Float64Array {
    return this.hashes.subarray(0, this.size)
  }

  /** Lets go of everything: a stream's fiber keeps its last gathering until the next. */
  clear(): void {
    this.size = 0
    this.slots = new Int32Array(16)
    this.hashes = new Float64Array(8)
    this.firsts = new Int32Array(8)
    this.ends = new Int32Array(8)
    this.units = new Uint16Array(256)
  }

  private is(k: number, email: string): boolean {
    const start = k === 0 ? 0 : this.ends[k - 1]!
    if (this.ends[k]! - start !== email.length) return false
    for (let i = 0; i < email.length; i++) if (this.units[start + i] !== email.charCodeAt(i)) return false
    return true
  }

  private growContacts(): void {
    const n = this.hashes.length * 2
    this.hashes = grown(this.hashes, n)
    this.firsts = grown(this.firsts, n)
    this.ends = grown(this.ends, n)
  }

  private growSlots(): void {
    const slots = new Int32Array(this.slots.length * 2)
    const mask = slots.length - 1
    for (let k = 0; k < this.size; k++) {
      let j = (this.hashes[k]! >>> 0) & mask
      while (slots[j] !== 0) j = (j + 1) & mask
      slots[j] = k + 1
    }
    this.slots = slots
  }
}
