/**
 * A bulk window's events while it waits for its turn: what was decided for each, and their texts,
 * deflated. A window is gathered well before its jobs start, and with several windows in flight
 * the parsed decisions and the texts (each line a slice that holds its whole 64 KB read chunk)
 * were most of the heap. Packed, a window of 5,000 events holds about 60 bytes each, and costs
 * about 25 ms to pack and read back (BENCHMARKS.md). The decisions are read back once, when the
 * window is sent; a text only when a result needs it (a dead letter, `raw`).
 */
import * as V8 from "node:v8"
import * as Zlib from "node:zlib"
import type { Prepared } from "./Prepare.js"

const deflate = (b: Buffer | string) => Zlib.deflateRawSync(b, { level: 1 })

export class WindowPack {
  /** The texts back, once one was asked for: a window's dead letters are written together. */
  #texts: ReadonlyArray<string | undefined> | undefined
  private constructor(
    readonly size: number,
    /** The decisions without their texts and parsed events, in V8's own serialization (exact, unlike JSON). */
    private readonly decided: Buffer,
    /** The texts joined, or the texts themselves when UTF-8 cannot carry them (a lone surrogate). */
    private readonly joined: Buffer | ReadonlyArray<string | undefined>,
    /** Where each text ends in the joined string; -1 for none. */
    private readonly ends: Int32Array
  ) {}

  static of(prepared: ReadonlyArray<Prepared>): WindowPack {
    const texts: Array<string | undefined> = new Array(prepared.length)
    const slim = prepared.map((p, i): Prepared => {
      if (p._tag === "Send") {
        texts[i] = p.text
        return { ...p, raw: undefined, text: undefined }
      }
      // A result keeps its text when its parsed form cannot be read again from it (not JSON).
      const r = p.result
      if (r.text === undefined || typeof r.raw !== "object" || r.raw === null) return p
      texts[i] = r.text
      return { ...p, result: { ...r, raw: undefined, text: undefined } }
    })
    const ends = new Int32Array(texts.length)
    let joined = ""
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i]
      ends[i] = t === undefined ? -1 : (joined += t).length
    }
    const wellFormed = (joined as unknown as { isWellFormed(): boolean }).isWellFormed()
    return new WindowPack(prepared.length, deflate(V8.serialize(slim)), wellFormed ? deflate(joined) : texts, ends)
  }

  /** What the pack holds, in bytes. */
  get packedBytes(): number {
    return this.decided.length + (Buffer.isBuffer(this.joined) ? this.joined.length : 0) + this.ends.byteLength
  }

  /** The decisions, read back: texts and parsed events left out (see `text`). Not kept. */
  decisions(): Array<Prepared> {
    return V8.deserialize(Zlib.inflateRawSync(this.decided)) as Array<Prepared>
  }

  text(i: number): string | undefined {
    return (this.#texts ??= this.unpack())[i]
  }

  private unpack(): ReadonlyArray<string | undefined> {
    if (!Buffer.isBuffer(this.joined)) return this.joined as ReadonlyArray<string | undefined>
    const joined = Zlib.inflateRawSync(this.joined).toString("utf8")
    const texts: Array<string | undefined> = new Array(this.size)
    let start = 0
    for (let i = 0; i < this.size; i++) {
      const end = this.ends[i]!
      if (end < 0) continue
      texts[i] = joined.slice(start, end)
      start = end
    }
    return texts
  }
}
