/**
 * Strings kept as UTF-8 in buffers of a fixed size, outside V8's heap: a bulk window's texts,
 * deflated, and its contacts as its jobs will send them (WindowPack). Held as strings or objects, a
 * window's thousands of them outlived the young generation, and each one promoted brought the next
 * old-generation collection nearer.
 */

/** Whether UTF-8 carries the string as it is (no lone surrogate). */
export const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed()

/** `bytes`, or a copy of its first `used` bytes in a buffer twice as large (or more) when `n` more do not fit. */
export const withRoom = (bytes: Buffer<ArrayBuffer>, used: number, n: number): Buffer<ArrayBuffer> => {
  if (used + n <= bytes.length) return bytes
  let size = bytes.length * 2
  while (used + n > size) size *= 2
  const bigger = Buffer.allocUnsafe(size)
  bytes.copy(bigger, 0, 0, used)
  return bigger
}

/** A copy of `a` at least `n` long (twice as long, or more), its elements as they were. */
export const grown = <A extends Float64Array | Int32Array | Uint16Array>(a: A, n: number): A => {
  let size = Math.max(a.length * 2, 8)
  while (size < n) size *= 2
  const b = new (a.constructor as new(n: number) => A)(size)
  b.set(a)
  return b
}

/** The buffers, and for each string its buffer (-1 for none) and where it starts and ends in it. */
export interface Pieces {
  readonly pieces: ReadonlyArray<Buffer>
  readonly at: Int32Array
}

/**
 * Scratch buffers of finished builders, for the next ones: a window's two (its contacts, its texts)
 * lived as long as it gathered, long enough to be collected only with the old generation.
 */
const spare: Array<Buffer> = []

export class TextPiecesBuilder {
  private readonly pieces: Array<Buffer> = []
  /** Three numbers a string (see Pieces), outside the heap as well; grown as needed. */
  private at = new Int32Array(3 * 32)
  private strings = 0
  private scratch: Buffer | undefined
  private used = 0
  /** Strings in the scratch buffer: an empty one needs its piece too. */
  private held = 0
  /** `seal`: what is kept of a piece (deflated); else the piece as it is. */
  constructor(private readonly size: number, private readonly seal?: (piece: Buffer) => Buffer) {}

  /** An entry with no string: its place is taken, `-1` its piece. */
  none(): void {
    this.place(-1, 0, 0)
  }

  add(text: string): void {
    // At most three bytes of UTF-8 a UTF-16 unit.
    const most = text.length * 3
    if (most > this.size) {
      this.flush()
      const own = Buffer.from(text, "utf8")
      this.place(this.pieces.length, 0, own.length)
      this.pieces.push(this.seal?.(own) ?? own)
      return
    }
    if (this.used + most > this.size) this.flush()
    this.scratch ??= spare.length > 0 && spare[spare.length - 1]!.length === this.size ? spare.pop()! : Buffer.allocUnsafe(this.size)
    const start = this.used
    this.used += this.scratch.write(text, start, "utf8")
    this.held++
    this.place(this.pieces.length, start, this.used)
  }

  finish(): Pieces {
    this.flush()
    // Pieces are copies (flush), never the scratch buffer itself.
    if (this.scratch !== undefined && spare.length < 4) spare.push(this.scratch)
    this.scratch = undefined
    const at = this.at.slice(0, this.strings * 3)
    this.at = new Int32Array(0)
    this.strings = 0
    return { pieces: this.pieces, at }
  }

  private place(piece: number, start: number, end: number): void {
    const i = this.strings++ * 3
    if (i + 3 > this.at.length) this.at = grown(this.at, i + 3)
    this.at[i] = piece
    this.at[i + 1] = start
    this.at[i + 2] = end
  }

  private flush(): void {
    if (this.held === 0) return
    // Sealed, or a copy of the part used: the scratch buffer is reused for the next piece.
    const part = this.scratch!.subarray(0, this.used)
    this.pieces.push(this.seal?.(part) ?? Buffer.from(part))
    this.used = 0
    this.held = 0
  }
}

/** The `k`th string's bytes, without a copy. */
export const bytesAt = ({ at, pieces }: Pieces, k: number): Buffer => pieces[at[k * 3]!]!.subarray(at[k * 3 + 1], at[k * 3 + 2])

/** The `k`th string's length in bytes. */
export const byteLengthAt = ({ at }: Pieces, k: number): number => at[k * 3 + 2]! - at[k * 3 + 1]!

/** Copies the `k`th string's bytes into `target` at `offset`; the number of bytes copied. */
export const copyAt = ({ at, pieces }: Pieces, k: number, target: Uint8Array, offset: number): number =>
  pieces[at[k * 3]!]!.copy(target, offset, at[k * 3 + 1], at[k * 3 + 2])
