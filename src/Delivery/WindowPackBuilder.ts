/**
 * Packs a bulk window as its events are gathered (WindowPack): each decision serialized by V8, each
 * update's contact as its job will send it, and each event's text, a piece at a time.
 */
import * as V8 from "node:v8"
import { TextPiecesBuilder } from "../internal/textPieces.js"
import { contactEntry } from "../Mailjet/MailjetShapes.js"
import type { Prepared } from "./Prepare.js"
import { deflate, type Packed, PIECES, type Pieces, WindowPack } from "./WindowPack.js"

/** Packs a window as its events are gathered. */
export class WindowPackBuilder {
  private readonly contacts: TextPiecesBuilder
  constructor(private readonly pieces: Pieces = PIECES) {
    this.contacts = new TextPiecesBuilder(pieces.text)
  }

  /** Decisions gathered unpacked (a gathering that showed the backlog), packed at once. */
  static from(prepared: ReadonlyArray<Prepared>, pieces?: Pieces): WindowPackBuilder {
    const builder = new WindowPackBuilder(pieces)
    for (const p of prepared) builder.add(p)
    return builder
  }
  size = 0
  /** How many of the events are to be sent, and to which contacts: each one's first update's place among them. */
  sends = 0
  readonly emails = new Map<string, number>()
  /** For each update, its contact's first update's place. */
  private readonly firsts: Array<number> = []
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
    let slim: Packed = p
    if (p._tag === "Send") {
      const k = this.sends++
      let first = this.emails.get(p.email)
      if (first === undefined) this.emails.set(p.email, first = k)
      this.firsts.push(first)
      this.contacts.add(contactEntry(p.body))
      text = p.text
      // Its body is its action alone: the contact is packed as its job sends it (`contacts`).
      slim = { ...p, raw: undefined, text: undefined, body: { Action: p.body.Action } }
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
    return new WindowPack(this.size, this.pieces.decisions, this.decided, { entries: this.contacts.finish(), firsts: Int32Array.from(this.firsts) }, this.texts, at, this.odd)
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
