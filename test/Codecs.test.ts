/**
 * The client's batch decoding with Codecs installed, without a broker: batches made and read by the
 * client's own record-batch code (as a fetch reads them), compressed by each codec, or made so
 * that no codec can decode them.
 */
import { describe, expect, it } from "@effect/vitest"
import { compressionsAlgorithms, createRecordsBatch, Reader, readRecordsBatch } from "@platformatic/kafka"
import { Schema } from "effect"
import { decodeEveryBatch, undecodable, UNDECODABLE_HEADER } from "../src/Kafka/Codecs.js"

decodeEveryBatch()

/** Where a v2 batch's length (of what follows it), its attributes (codec bits) and its records are. */
const LENGTH_AT = 8
const BATCH_HEAD = 12
const ATTRIBUTES_AT = 21
const RECORDS_AT = 61

const Values = Schema.Array(Schema.String.pipe(Schema.maxLength(200))).pipe(Schema.minItems(1), Schema.maxItems(300))
const Codec = Schema.Literal("gzip", "snappy", "lz4")
/** What makes a batch undecodable: a codec number Kafka has not assigned, bytes no gzip reader takes, Java's snappy framing. */
const Damage = Schema.Union(
  Schema.Struct({ _tag: Schema.Literal("codec"), bitmask: Schema.Literal(5, 6, 7) }),
  Schema.Struct({ _tag: Schema.Literal("gzip-garbage"), bytes: Schema.Uint8ArrayFromSelf }),
  Schema.Struct({ _tag: Schema.Literal("java-snappy") })
)

const batchOf = (values: ReadonlyArray<string>, compression: "gzip" | "snappy" | "lz4") =>
  createRecordsBatch(values.map((v, i) => ({ topic: "t", key: Buffer.from(`k${i}`), value: Buffer.from(v), timestamp: 1n })), { compression }).buffer

const read = (bytes: Buffer) => readRecordsBatch(Reader.from(bytes)).records

type Snappy = { compressSync: (data: Buffer | { readonly buffer: Buffer }) => Buffer }
const snappy = compressionsAlgorithms.snappy as unknown as Snappy

const damaged = (values: ReadonlyArray<string>, damage: typeof Damage.Type): Buffer => {
  switch (damage._tag) {
    case "codec": {
      const bytes = batchOf(values, "gzip")
      bytes.writeInt16BE((bytes.readInt16BE(ATTRIBUTES_AT) & ~0b111) | damage.bitmask, ATTRIBUTES_AT)
      return bytes
    }
    case "gzip-garbage": {
      const bytes = batchOf(values, "gzip")
      const garbage = Buffer.from([0x00, ...damage.bytes]) // never gzip's magic 1f 8b
      const out = Buffer.concat([bytes.subarray(0, RECORDS_AT), garbage])
      out.writeInt32BE(out.length - BATCH_HEAD, LENGTH_AT)
      return out
    }
    case "java-snappy": {
      const own = snappy.compressSync
      snappy.compressSync = (data) => {
        const raw = own(data)
        const length = Buffer.alloc(4)
        length.writeUInt32BE(raw.length)
        return Buffer.concat([Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]), length, raw])
      }
      try {
        return batchOf(values, "snappy")
      } finally {
        snappy.compressSync = own
      }
    }
  }
}

describe("batch decoding", () => {
  it.prop(
    "law: a batch any codec compressed reads back as its records, in order, none a marker",
    { values: Values, codec: Codec },
    ({ codec, values }) => {
      const records = read(batchOf(values, codec))
      expect(records.map((r) => r.value?.toString())).toStrictEqual(values)
      expect(records.map((r) => r.offsetDelta)).toStrictEqual(values.map((_, i) => i))
      for (const r of records) expect(r.headers.length).toBe(0)
    },
    { fastCheck: { numRuns: 100 } }
  )

  it.prop(
    "law: a batch nothing can decode reads as one marker per record it holds, numbered 0…n-1, with no key or value and the reason",
    { values: Values, damage: Damage },
    ({ damage, values }) => {
      const records = read(damaged(values, damage))
      expect(records.length).toBe(values.length)
      expect(records.map((r) => r.offsetDelta)).toStrictEqual(values.map((_, i) => i))
      for (const r of records) {
        expect(r.key).toBeNull()
        expect(r.value).toBeNull()
        const headers = new Map(r.headers.map(([k, v]) => [k?.toString(), v?.toString()]))
        expect(undecodable({ headers })).toMatch(/^a (gzip|snappy|codec \d) batch that could not be decoded \(.+\)$/)
        expect([...headers.keys()]).toStrictEqual([UNDECODABLE_HEADER])
      }
    },
    { fastCheck: { numRuns: 100 } }
  )
})
