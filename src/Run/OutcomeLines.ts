/**
 * Outcome lines as the CLI writes them on stdout: UTF-8 straight into a buffer a piece, the same
 * bytes as `outcomeLine` and a newline each.
 */
import { outcomeTailBytes, type Result } from "../Domain/Outcome.js"

/** Room for the UTF-8 of a part of up to `n` UTF-16 units as JSON writes it (`\u00XX` at worst). */
const jsonRoom = (s: string | undefined) => s === undefined ? 0 : 16 + 6 * s.length

/** Writes `s` as JSON.stringify does, in UTF-8, at `at`; where it ends. ASCII that JSON leaves as it is, is copied. */
const writeJsonString = (b: Buffer, at: number, s: string): number => {
  b[at] = 0x22
  let j = at + 1
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7f || c === 0x22 || c === 0x5c) return at + b.write(JSON.stringify(s), at, "utf8")
    b[j++] = c
  }
  b[j] = 0x22
  return j + 1
}

/** Writes a whole number's digits at `at`; where they end. */
const writeDigits = (b: Buffer, at: number, n: number): number => {
  let end = at + 1
  for (let x = n; x >= 10; x = Math.floor(x / 10)) end++
  for (let i = end - 1, x = n; i >= at; i--, x = Math.floor(x / 10)) b[i] = 0x30 + x % 10
  return end
}

/** A piece of stdout, started at this size: 256 bulk lines take about 50 KB. */
const LINES_BYTES = 64 * 1024

/**
 * Outcome lines (`outcomeLine`, each with its newline) written as UTF-8 straight into a buffer:
 * the bytes stdout takes, without a string a line, a string a piece and their copy as bytes.
 */
export class OutcomeLines {
  private bytes = Buffer.allocUnsafe(0)
  private used = 0

  add(r: Result): void {
    const tail = outcomeTailBytes(r.outcome)
    const { line, messageId, event } = r
    this.room(40 + jsonRoom(messageId) + jsonRoom(event) + tail.length)
    const b = this.bytes
    let at = this.used
    if (line === undefined) b[at++] = 0x7b
    else {
      at += b.write("{\"line\":", at, "latin1")
      at = Number.isSafeInteger(line) && line >= 0 ? writeDigits(b, at, line) : at + b.write(JSON.stringify(line), at, "latin1")
      b[at++] = 0x2c
    }
    if (messageId !== undefined) {
      at += b.write("\"messageId\":", at, "latin1")
      at = writeJsonString(b, at, messageId)
      b[at++] = 0x2c
    }
    if (event !== undefined) {
      at += b.write("\"event\":", at, "latin1")
      at = writeJsonString(b, at, event)
      b[at++] = 0x2c
    }
    at += tail.copy(b, at)
    b[at++] = 0x0a
    this.used = at
  }

  /** The lines written so far; the next go to a buffer of their own (stdout may still hold these). */
  take(): Buffer {
    const out = this.bytes.subarray(0, this.used)
    this.bytes = Buffer.allocUnsafe(0)
    this.used = 0
    return out
  }

  private room(n: number): void {
    if (this.used + n <= this.bytes.length) return
    const bigger = Buffer.allocUnsafe(Math.max(LINES_BYTES, 2 * (this.used + n)))
    this.bytes.copy(bigger, 0, 0, this.used)
    this.bytes = bigger
  }
}
