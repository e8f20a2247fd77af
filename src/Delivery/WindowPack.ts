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
import * as Zlib from "node:zlib"
import type { WindowContacts } from "../internal/bulkPlan.js"
import { readRecords } from "../internal/decisionRecords.js"
import { bytesAt, type Pieces as Texts } from "../internal/textPieces.js"
import { entryBody } from "../Mailjet/MailjetShapes.js"
import type { PackedSend, Prepared } from "./Prepare.js"

/**
 * A piece deflated, in a buffer of its own size: node returns an output of one chunk as a slice of
 * the 16 KB buffer it wrote into, which the pack would then hold for the window's life.
 */
export const deflate = (b: Buffer): Buffer => {
  const out = Zlib.deflateRawSync(b, { level: 1 })
  if (out.buffer.byteLength - out.length < 4096) return out
  const own = Buffer.allocUnsafeSlow(out.length)
  out.copy(own)
  return own
}

/** A decision as a pack gives it back: an update's body is its action alone (its contact is the pack's). */
export type Packed = Extract<Prepared, { _tag: "Done" }> | PackedSend

/** How a window is cut into pieces, each deflated on its own. */
export interface Pieces {
  /** Bytes of text (UTF-8) a piece. */
  readonly text: number
  /** Decisions a piece. */
  readonly decisions: number
}
/** 512 of the Default preset's decisions are about 70 KB of records (decisionRecords.ts). */
export const PIECES: Pieces = { text: 256 * 1024, decisions: 512 }

/** What a pack holds: each piece's decisions, deflated; its contacts; its texts, deflated. */
interface Buffers {
  readonly decided: ReadonlyArray<Buffer>
  /** Each update's contact as its job sends it (contactEntry), by its place among the updates. */
  readonly contacts: Texts
  /** Each event's text (none for most results), by its place in the window. */
  readonly texts: Texts
}

/** Texts in a file: the length of each piece, and of their places. */
interface SpilledTexts {
  readonly pieces: ReadonlyArray<number>
  readonly at: number
}

/** A spilled pack: its file and the length of each buffer, in the file's order. */
interface Spilled {
  readonly fd: number
  readonly decided: ReadonlyArray<number>
  readonly contacts: SpilledTexts
  readonly texts: SpilledTexts
}

let spills = 0

const readAll = (fd: number, into: Uint8Array, position: number) => {
  for (let done = 0; done < into.length;) {
    const n = Fs.readSync(fd, into, done, into.length - done, position + done)
    if (n === 0) throw new Error("a bulk window's spilled pack ended early")
    done += n
  }
}

const sum = (lengths: ReadonlyArray<number>) => lengths.reduce((n, length) => n + length, 0)

/** A spill's file, written from its start. A class: closures made for each spill were compiled again for each. */
class SpillFile {
  private position = 0
  constructor(private readonly fd: number) {}
  /** Writes `b` whole next; its length. */
  write(b: Uint8Array): number {
    for (let done = 0; done < b.length;) done += Fs.writeSync(this.fd, b, done, b.length - done, this.position + done)
    this.position += b.length
    return b.length
  }
  writeEach(bs: ReadonlyArray<Uint8Array>): Array<number> {
    const lengths: Array<number> = []
    for (const b of bs) lengths.push(this.write(b))
    return lengths
  }
}

const readPieces = (fd: number, lengths: ReadonlyArray<number>, position: number): Array<Buffer> => {
  const out: Array<Buffer> = []
  for (const length of lengths) {
    const b = Buffer.allocUnsafeSlow(length)
    readAll(fd, b, position)
    position += length
    out.push(b)
  }
  return out
}

const readTexts = (fd: number, s: SpilledTexts, position: number): Texts => {
  const at = new Int32Array(s.at / 4)
  readAll(fd, new Uint8Array(at.buffer), position + sum(s.pieces))
  return { pieces: readPieces(fd, s.pieces, position), at }
}

/** The decisions' pieces come first in the file: read alone when the window is sent and once its jobs end. */
const readDecided = (s: Spilled): Array<Buffer> => readPieces(s.fd, s.decided, 0)

/** The contacts come after the decisions: read alone when the window's jobs are planned. */
const readContacts = (s: Spilled): Texts => readTexts(s.fd, s.contacts, sum(s.decided))

const readBack = (s: Spilled): Buffers => ({
  decided: readDecided(s),
  contacts: readContacts(s),
  texts: readTexts(s.fd, s.texts, sum(s.decided) + sum(s.contacts.pieces) + s.contacts.at)
})

export class WindowPack {
  /** The last text piece inflated: a window's dead letters are written together, in order. */
  #piece = -1
  #inflated: Buffer | undefined
  #held: Buffers | undefined
  #spilled: Spilled | undefined
  /** Kept in memory when spilled: four bytes an update. */
  readonly #firsts: Int32Array
  /** Made by WindowPackBuilder. */
  constructor(
    readonly size: number,
    private readonly decisionsPiece: number,
    /** The decisions without their texts and parsed events, as records (decisionRecords.ts). */
    decided: ReadonlyArray<Buffer>,
    { entries: contacts, firsts }: WindowContacts,
    texts: Texts,
    /** Texts that UTF-8 cannot carry (a lone surrogate), as they are. */
    private readonly odd: ReadonlyMap<number, string>
  ) {
    this.#held = { decided, contacts, texts }
    this.#firsts = firsts
  }

  /** What the pack holds, in bytes. */
  get packedBytes(): number {
    const { contacts, decided, texts } = this.#held ?? readBack(this.#spilled!)
    let n = contacts.at.byteLength + texts.at.byteLength
    for (const b of [...decided, ...contacts.pieces, ...texts.pieces]) n += b.length
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
      const file = new SpillFile(fd)
      const texts = ({ at, pieces }: Texts): SpilledTexts => ({
        pieces: file.writeEach(pieces),
        at: file.write(new Uint8Array(at.buffer, at.byteOffset, at.byteLength))
      })
      // In the order the readers above expect.
      this.#spilled = { fd, decided: file.writeEach(held.decided), contacts: texts(held.contacts), texts: texts(held.texts) }
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

  /** The updates' contacts as their jobs send them, and who they are, by each update's place among the window's updates. */
  contacts(): WindowContacts {
    return { entries: this.#held?.contacts ?? readContacts(this.#spilled!), firsts: this.#firsts }
  }

  /** The decisions in order, read a piece at a time: texts and parsed events left out (see `text`). */
  *each(): Generator<Packed> {
    let i = 0
    for (const piece of this.#held?.decided ?? readDecided(this.#spilled!)) {
      const n = Math.min(this.decisionsPiece, this.size - i)
      yield* readRecords(Zlib.inflateRawSync(piece), n)
      i += n
    }
  }

  /** The decisions, read back whole, each update's body made again from its contact. Not kept. */
  decisions(): Array<Prepared> {
    const { entries } = this.contacts()
    const out: Array<Prepared> = new Array(this.size)
    let i = 0
    let k = 0
    for (const p of this.each()) out[i++] = p._tag === "Done" ? p : { ...p, body: entryBody(bytesAt(entries, k++), p.body.Action) }
    return out
  }

  /** The decisions with their texts: for a gathering that goes event by event after all. */
  unpacked(): Array<Prepared> {
    const out = this.decisions()
    for (let i = 0; i < out.length; i++) {
      const p = out[i]!
      const text = this.text(i)
      if (text !== undefined) out[i] = p._tag === "Send" ? { ...p, text } : { ...p, result: { ...p.result, text } }
    }
    return out
  }

  text(i: number): string | undefined {
    this.keep()
    const { at, pieces } = this.#held!.texts
    const piece = at[i * 3]!
    if (piece < 0) return this.odd.get(i)
    if (piece !== this.#piece) {
      this.#inflated = Zlib.inflateRawSync(pieces[piece]!)
      this.#piece = piece
    }
    return this.#inflated!.toString("utf8", at[i * 3 + 1], at[i * 3 + 2])
  }
}
