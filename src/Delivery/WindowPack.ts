/**
 * A bulk window's events while it gathers and waits for its turn: what was decided for each, and
 * their texts, deflated. Packed as they arrive (`WindowPackBuilder`): held parsed until the window
 * was full, a window's decisions and texts (each line a slice that holds its whole 64 KB read
 * chunk) outlived the young generation and were collected only with the old one, which then
 * swung by tens of megabytes. Packed, an event's parsed form dies young, and a window of 5,000
 * events holds about 75 bytes each. Pieces of about 256 KB are deflated one at a time, so packing
 * needs no window-sized buffer, and a dead letter's text inflates its piece only. The decisions
 * are read back when the window is sent and once its jobs end; a text only when a result needs it.
 *
 * While the window waits and its jobs run (30 s jobs hold about 200,000 events in flight), the pack
 * is in a file of its own (`spill`), about 90 bytes an event less in memory: unlinked as soon as it
 * is opened, so nothing is left behind and no cleaner can remove it; read back when the window's
 * results are made (`keep`), which closes it. A pack that cannot be written stays in memory.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as V8 from "node:v8"
import * as Zlib from "node:zlib"
import type { Prepared } from "./Prepare.js"

const deflate = (b: Buffer) => Zlib.deflateRawSync(b, { level: 1 })

/** How a window is cut into pieces, each deflated on its own. */
export interface Pieces {
  /** Bytes of text (UTF-8) a piece. */
  readonly text: number
  /** Decisions a piece. */
  readonly decisions: number
}
/** 512 decisions are about 200 KB of V8's serialization for the Default preset's. */
const PIECES: Pieces = { text: 256 * 1024, decisions: 512 }

/** What a pack holds: each piece's decisions and texts, deflated, and where each event's text is. */
interface Buffers {
  readonly decided: ReadonlyArray<Buffer>
  readonly texts: ReadonlyArray<Buffer>
  /** For each event, its text's piece (-1 for none), and where the text starts and ends in it. */
  readonly at: Int32Array
}

/** A spilled pack: its file and the length of each buffer, in the file's order. */
interface Spilled {
  readonly fd: number
  readonly decided: ReadonlyArray<number>
  readonly texts: ReadonlyArray<number>
  readonly at: number
}

let spills = 0

const readAll = (fd: number, into: Uint8Array, position: number) => {
  for (let done = 0; done < into.length;) {
    const n = Fs.readSync(fd, into, done, into.length - done, position + done)
    if (n === 0) throw new Error("a bulk window's spilled pack ended early")
    done += n
  }
}

/** The decisions' pieces come first in the file: read alone when the window is sent and once its jobs end. */
const readDecided = (s: Spilled): Array<Buffer> => {
  let position = 0
  return s.decided.map((length) => {
    const b = Buffer.allocUnsafeSlow(length)
    readAll(s.fd, b, position)
    position += length
    return b
  })
}

const readBack = (s: Spilled): Buffers => {
  const decided = readDecided(s)
  let position = s.decided.reduce((n, length) => n + length, 0)
  const texts = s.texts.map((length) => {
    const b = Buffer.allocUnsafeSlow(length)
    readAll(s.fd, b, position)
    position += length
    return b
  })
  const at = new Int32Array(s.at / 4)
  readAll(s.fd, new Uint8Array(at.buffer), position)
  return { decided, texts, at }
}

export class WindowPack {
  /** The last text piece inflated: a window's dead letters are written together, in order. */
  #piece = -1
  #inflated: Buffer | undefined
  #held: Buffers | undefined
  #spilled: Spilled | undefined
  /** Made by WindowPackBuilder. */
  constructor(
    readonly size: number,
    private readonly decisionsPiece: number,
    /** The decisions without their texts and parsed events, in V8's own serialization (exact, unlike JSON). */
    decided: ReadonlyArray<Buffer>,
    texts: ReadonlyArray<Buffer>,
    at: Int32Array,
    /** Texts that UTF-8 cannot carry (a lone surrogate), as they are. */
    private readonly odd: ReadonlyMap<number, string>
  ) {
    this.#held = { decided, texts, at }
  }

  /** What the pack holds, in bytes. */
  get packedBytes(): number {
    const { at, decided, texts } = this.#held ?? readBack(this.#spilled!)
    let n = at.byteLength
    for (const b of decided) n += b.length
    for (const b of texts) n += b.length
    return n
  }

  /** Whether the pack is in its file, not in memory. */
  get spilled(): boolean {
    return this.#spilled !== undefined
  }

  /** Moves the pack to a file of its own in `dir`; false (and still in memory) if it cannot be written. */
  spill(dir: string = Os.tmpdir()): boolean {
    const held = this.#held
    if (held === undefined) return true
    let fd: number | undefined
    const path = Path.join(dir, `signal-mailjet-window-${process.pid}-${spills++}`)
    try {
      fd = Fs.openSync(path, "wx+", 0o600)
      Fs.unlinkSync(path)
      let position = 0
      const write = (b: Uint8Array) => {
        for (let done = 0; done < b.length;) done += Fs.writeSync(fd!, b, done, b.length - done, position + done)
        position += b.length
        return b.length
      }
      this.#spilled = {
        fd,
        decided: held.decided.map(write),
        texts: held.texts.map(write),
        at: write(new Uint8Array(held.at.buffer, held.at.byteOffset, held.at.byteLength))
      }
      this.#held = undefined
      return true
    } catch {
      if (fd !== undefined) {
        Fs.closeSync(fd)
        // Where an open file cannot be unlinked (Windows), once closed.
        Fs.rmSync(path, { force: true })
      }
      this.#spilled = undefined
      return false
    }
  }

  /** Reads a spilled pack back into memory and closes its file; nothing to do for one in memory. */
  keep(): void {
    const spilled = this.#spilled
    if (spilled === undefined) return
    this.#held = readBack(spilled)
    this.#spilled = undefined
    Fs.closeSync(spilled.fd)
  }

  /** The decisions in order, read a piece at a time: texts and parsed events left out (see `text`). */
  *each(): Generator<Prepared> {
    let i = 0
    for (const piece of this.#held?.decided ?? readDecided(this.#spilled!)) {
      const d = new V8.DefaultDeserializer(Zlib.inflateRawSync(piece))
      d.readHeader()
      for (let k = 0; k < this.decisionsPiece && i < this.size; k++, i++) yield d.readValue() as Prepared
    }
  }

  /** The decisions, read back whole. Not kept. */
  decisions(): Array<Prepared> {
    const out: Array<Prepared> = new Array(this.size)
    let i = 0
    for (const p of this.each()) out[i++] = p
    return out
  }

  /** The decisions with their texts: for a gathering that goes event by event after all. */
  unpacked(): Array<Prepared> {
    return this.decisions().map((p, i) => {
      const text = this.text(i)
      if (text === undefined) return p
      return p._tag === "Send" ? { ...p, text } : { ...p, result: { ...p.result, text } }
    })
  }

  text(i: number): string | undefined {
    this.keep()
    const { at, texts } = this.#held!
    const piece = at[i * 3]!
    if (piece < 0) return this.odd.get(i)
    if (piece !== this.#piece) {
      this.#inflated = Zlib.inflateRawSync(texts[piece]!)
      this.#piece = piece
    }
    return this.#inflated!.toString("utf8", at[i * 3 + 1], at[i * 3 + 2])
  }
}

/** Packs a window as its events are gathered. */
export class WindowPackBuilder {
  constructor(private readonly pieces: Pieces = PIECES) {}

  /** Decisions gathered unpacked (a gathering that showed the backlog), packed at once. */
  static from(prepared: ReadonlyArray<Prepared>, pieces?: Pieces): WindowPackBuilder {
    const builder = new WindowPackBuilder(pieces)
    for (const p of prepared) builder.add(p)
    return builder
  }
  size = 0
  /** How many of the events are to be sent, and to which contacts. */
  sends = 0
  readonly emails = new Set<string>()
  private readonly decided: Array<Buffer> = []
  private serializer: V8.Serializer | undefined
  private pending = 0
  private readonly texts: Array<Buffer> = []
  private scratch: Buffer | undefined
  private used = 0
  private readonly at: Array<number> = []
  private readonly odd = new Map<number, string>()

  add(p: Prepared): void {
    const i = this.size++
    let text: string | undefined
    let slim: Prepared = p
    if (p._tag === "Send") {
      this.sends++
      this.emails.add(p.email)
      text = p.text
      slim = { ...p, raw: undefined, text: undefined }
    } else {
      // A result keeps its text when its parsed form cannot be read again from it (not JSON).
      const r = p.result
      if (r.text !== undefined && typeof r.raw === "object" && r.raw !== null) {
        text = r.text
        slim = { ...p, result: { ...r, raw: undefined, text: undefined } }
      }
    }
    if (this.serializer === undefined) {
      this.serializer = new V8.DefaultSerializer()
      this.serializer.writeHeader()
    }
    this.serializer.writeValue(slim)
    if (++this.pending === this.pieces.decisions) this.flushDecisions()
    this.addText(i, text)
  }

  finish(): WindowPack {
    this.flushDecisions()
    this.flushText()
    this.scratch = undefined
    const at = Int32Array.from(this.at)
    // A stream's fiber keeps its last gathering, this builder with it, until the next one.
    this.at.length = 0
    return new WindowPack(this.size, this.pieces.decisions, this.decided, this.texts, at, this.odd)
  }

  private addText(i: number, text: string | undefined): void {
    if (text === undefined) return void this.at.push(-1, 0, 0)
    if (!(text as unknown as { isWellFormed(): boolean }).isWellFormed()) {
      this.odd.set(i, text)
      return void this.at.push(-1, 0, 0)
    }
    // At most three bytes of UTF-8 a UTF-16 unit.
    const most = text.length * 3
    if (most > this.pieces.text) {
      this.flushText()
      this.at.push(this.texts.length, 0, Buffer.byteLength(text))
      this.texts.push(deflate(Buffer.from(text, "utf8")))
      return
    }
    if (this.used + most > this.pieces.text) this.flushText()
    this.scratch ??= Buffer.allocUnsafe(this.pieces.text)
    const start = this.used
    this.used += this.scratch.write(text, start, "utf8")
    this.at.push(this.texts.length, start, this.used)
  }

  private flushText(): void {
    if (this.used === 0) return
    this.texts.push(deflate(this.scratch!.subarray(0, this.used)))
    this.used = 0
  }

  private flushDecisions(): void {
    if (this.serializer === undefined) return
    this.decided.push(deflate(this.serializer.releaseBuffer()))
    this.serializer = undefined
    this.pending = 0
  }
}
