/**
 * How a fetched batch is decompressed, made total: the one place the Kafka client's codecs are
 * changed (it has no public API for them; its table by bitmask is exported and mutable).
 *
 * - zstd: Node's own where the runtime has it, else fzstd (pure JavaScript). Node 20 has none, and
 *   the client then fails every fetch that holds a zstd batch, which a broker writes for any topic
 *   with compression.type=zstd.
 * - A batch nothing here can decode (corrupt bytes, a codec or a framing the client lacks) would
 *   fail the whole fetch, for every partition of its broker, at every retry: an outage that never
 *   ends. It is read instead as marker records, one per record the batch holds, with no key or
 *   value and the reason in a header (`undecodable`); the readers dead-letter or skip them, and
 *   the partition moves on past the batch.
 */
import { compressionsAlgorithmsByBitmask, createRecord, Writer } from "@platformatic/kafka"
import { decompress as fzstd } from "fzstd"
import * as zlib from "node:zlib"

/** The header of a marker record: why its batch could not be decoded. */
export const UNDECODABLE_HEADER = "signal-mailjet-undecodable"

/** Why the record's batch could not be decoded, for a marker record; undefined for any other. */
export const undecodable = (record: { readonly headers?: ReadonlyMap<unknown, unknown> | undefined }): string | undefined => {
  const reason = record.headers?.get(UNDECODABLE_HEADER)
  return reason === undefined ? undefined : String(reason)
}

type Bytes = Buffer | { readonly buffer: Buffer }
const bytes = (data: Bytes): Buffer => (Buffer.isBuffer(data) ? data : data.buffer)

const nativeZstd = (zlib as { readonly zstdDecompressSync?: (data: Buffer) => Buffer }).zstdDecompressSync

const zstd = (data: Bytes): Buffer => {
  if (nativeZstd !== undefined) return nativeZstd(bytes(data))
  const out = fzstd(bytes(data))
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength)
}

const NAMES: { readonly [bitmask: number]: string } = { 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd" }
/** Why a codec may fail here on valid bytes: the client reads raw snappy blocks, not Java's framing. */
const HINTS: { readonly [bitmask: number]: string } = { 2: "; Java's producer frames snappy in a way this client cannot read" }

/**
 * What the client reads a batch's records from, standing in for its decompressed bytes: marker
 * records numbered 0, 1, 2… (the client adds the batch's first offset), made as they are read,
 * since only the batch's header, which the decompressor never sees, says how many there are.
 */
class Markers {
  readonly length = Number.MAX_SAFE_INTEGER
  readonly #made = Writer.create()
  readonly #headers: Map<Buffer, Buffer>
  #count = 0
  constructor(reason: string) {
    this.#headers = new Map([[Buffer.from(UNDECODABLE_HEADER), Buffer.from(reason)]])
  }
  #upTo(end: number) {
    while (this.#made.length < end) {
      // Timestamp 0 past the batch's first: a marker is placed at its batch's time.
      this.#made.appendFrom(createRecord({ key: null, value: null, headers: this.#headers, timestamp: 0n } as never, this.#count++, 0n))
    }
    return this.#made.dynamicBuffer
  }
  readInt8(at: number) {
    return this.#upTo(at + 1).readInt8(at)
  }
  readVarInt(at: number) {
    return this.#upTo(at + 10).readVarInt(at)
  }
  readVarInt64(at: number) {
    return this.#upTo(at + 10).readVarInt64(at)
  }
  slice(start: number, end: number) {
    return this.#upTo(end).slice(start, end)
  }
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e))

/** A batch's decompressor that never throws: what it cannot decode becomes marker records. */
const total = (name: string, hint: string, decode: ((data: Bytes) => Buffer) | undefined) => (data: Bytes): Buffer => {
  try {
    if (decode === undefined) throw new Error("no decoder for this codec")
    return decode(data)
  } catch (e) {
    return new Markers(`a ${name} batch that could not be decoded (${errorText(e)}${hint})`) as unknown as Buffer
  }
}

let installed = false

/** Installs the decompressors above in the client, once; every client this project makes calls it. */
export const decodeEveryBatch = (): void => {
  if (installed) return
  installed = true
  const table = compressionsAlgorithmsByBitmask as unknown as {
    [bitmask: number]: { readonly decompressSync: (data: Bytes) => Buffer } | undefined
  }
  // A new entry, not an edit: the same objects compress what this process produces.
  for (let bitmask = 1; bitmask <= 7; bitmask++) {
    const name = NAMES[bitmask] ?? `codec ${bitmask}`
    const decode = bitmask === 4 ? zstd : table[bitmask]?.decompressSync
    table[bitmask] = { ...table[bitmask], decompressSync: total(name, HINTS[bitmask] ?? "", decode) }
  }
}
