/**
 * A 64-bit hash of an email, for tables that hold contacts by hash instead of by address: the
 * run's own unsubscribes (Suppressions.ts) and a bulk window's contacts (internal/contactSet.ts).
 * Two multiplicative hashes over the UTF-16 units, each finished by MurmurHash3's mixer.
 */

/** The two 32-bit halves of the last `hashEmail`: hashing allocates nothing. */
export let hashHi = 0
export let hashLo = 0

export const hashEmail = (s: string): void => {
  let a = 0x811c9dc5
  let b = 0x27d4eb2f ^ s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x9e3779b1) ^ (b >>> 15)
  }
  hashHi = mix(a ^ Math.imul(b, 0x85ebca6b))
  hashLo = mix(b ^ Math.imul(a, 0xc2b2ae35))
}

const mix = (h: number) => {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}
