/**
 * Packs a bulk window as its events are gathered (WindowPack): each decision as a record
 * (decisionRecords.ts), each update's contact as its job will send it, and each event's text, a
 * piece at a time.
 */
import { RecordsWriter } from "../internal/decisionRecords.js"
import { EmailPlaces } from "../internal/emailPlaces.js"
import { grown, TextPiecesBuilder, wellFormed } from "../internal/textPieces.js"
import { contactEntry } from "../Mailjet/MailjetShapes.js"
import type { Prepared } from "./Prepare.js"
import { deflate, type Packed, PIECES, type Pieces, WindowPack } from "./WindowPack.js"

/** Packs a window as its events are gathered. */
export class WindowPackBuilder {
  private readonly contacts: TextPiecesBuilder
  private readonly texts: TextPiecesBuilder
  constructor(private readonly pieces: Pieces = PIECES) {
    this.contacts = new TextPiecesBuilder(pieces.text)
    this.texts = new TextPiecesBuilder(pieces.text, deflate)
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
  readonly emails = new EmailPlaces()
  /** For each update, its contact's first update's place. */
  private firsts = new Int32Array(64)
  private readonly decided: Array<Buffer> = []
  private readonly records = new RecordsWriter()
  private pending = 0
  private readonly odd = new Map<number, string>()

  /** Packs the decision; true when it is an update of a contact new to the window. */
  add(p: Prepared): boolean {
    const i = this.size++
    let text: string | undefined
    let packed: Prepared | Packed = p
    let fresh = false
    if (p._tag === "Send") {
      const k = this.sends++
      const first = this.emails.placeOf(p.email, k)
      fresh = first === k
      if (k === this.firsts.length) this.firsts = grown(this.firsts, k + 1)
      this.firsts[k] = first
      this.contacts.add(contactEntry(p.body))
      // Packed without its text and parsed event, its body its action alone (RecordsWriter): the
      // contact is packed as its job sends it (`contacts`).
      text = p.text
    } else {
      // A result keeps its text when its parsed form cannot be read again from it (not JSON).
      const r = p.result
      if (r.text !== undefined && typeof r.raw === "object" && r.raw !== null) {
        text = r.text
        packed = { ...p, result: { ...r, raw: undefined, text: undefined } }
      }
    }
    this.records.add(packed)
    if (++this.pending === this.pieces.decisions) this.flushDecisions()
    this.addText(i, text)
    return fresh
  }

  finish(): WindowPack {
    this.flushDecisions()
    // A stream's fiber keeps its last gathering, this builder with it, until the next one: the
    // pieces' places are let go by `finish`.
    const contacts = { entries: this.contacts.finish(), firsts: this.firsts.slice(0, this.sends) }
    this.firsts = new Int32Array(0)
    return new WindowPack(this.size, this.pieces.decisions, this.decided, contacts, this.texts.finish(), this.odd)
  }

  private addText(i: number, text: string | undefined): void {
    if (text === undefined) return this.texts.none()
    if (!wellFormed(text)) {
      this.odd.set(i, text)
      return this.texts.none()
    }
    this.texts.add(text)
  }

  private flushDecisions(): void {
    if (this.pending === 0) return
    this.decided.push(deflate(this.records.take()))
    this.pending = 0
  }
}
