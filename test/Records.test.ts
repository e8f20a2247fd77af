/**
 * `serve`'s record handling without a broker: any record value (deep, wide, huge, control
 * characters, bytes that are not UTF-8, no value at all) decoded as the consumer decodes it, then
 * through the engine as serve runs it (`readRecord`) and into its dead letter (`deadLetterMessage`),
 * against the simulator over real HTTP.
 */
import { expect, layer } from "@effect/vitest"
import { stringDeserializers } from "@platformatic/kafka"
import { Arbitrary, Effect, FastCheck, Stream } from "effect"
import { Delivery } from "../src/Delivery/Delivery.js"
import { DEAD_LETTER_MAX_BYTES, outcomeLine, type Result } from "../src/Domain/Outcome.js"
import { undecodable, UNDECODABLE_HEADER } from "../src/Kafka/Codecs.js"
import { deadLetterMessage, type KafkaRecord, readRecord } from "../src/Kafka/Records.js"
import { readDeadLetter } from "../src/Run/Ndjson.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { PoisonLine } from "./arbitraries.js"
import { capturedLogs, deliveryLayer, simulatorLayer } from "./support/layers.js"

/** A record's value as bytes (undefined: a record without one), and the emails in it. */
const email = FastCheck.tuple(FastCheck.stringMatching(/^[a-z][a-z0-9]{3,10}$/), FastCheck.stringMatching(/^[a-z]{3,10}$/))
  .map(([local, domain]) => `${local}@${domain}.example`)
const PoisonValue: FastCheck.Arbitrary<{
  readonly bytes: Uint8Array | undefined
  readonly emails: ReadonlyArray<string>
  readonly undecodable?: boolean
}> =
  FastCheck.oneof(
    // every poison line of deliver's laws, as UTF-8
    Arbitrary.make(PoisonLine).map((p) => ({ bytes: new TextEncoder().encode(p.text), emails: p.emails })),
    // an address among bytes that are not UTF-8
    FastCheck.tuple(FastCheck.uint8Array({ maxLength: 40 }), email, FastCheck.uint8Array({ maxLength: 40 }))
      .map(([a, e, b]) => ({ bytes: Buffer.concat([a, Buffer.from(` ${e} `), b, Buffer.from([0xff, 0xc3])]), emails: [e] })),
    // a good event, so that delivered ones are logged too
    email.map((e) => ({
      bytes: new TextEncoder().encode(JSON.stringify({ type: "track", event: "Subscribed", traits: { email: e } })),
      emails: [e]
    })),
    // a tombstone
    FastCheck.constant({ bytes: undefined, emails: [] }),
    // a record of a batch that could not be decoded, as Codecs makes it: no key, no value, the reason
    FastCheck.constant({ bytes: undefined, emails: [], undecodable: true })
  )

const simulator = simulatorLayer(16)
const TOPIC = "delivery-prop"

layer(simulator, { excludeTestServices: true })("serve's record handling", (it) => {
  it.effect.prop(
    "law: every record ends as exactly one outcome, in order, with a dead letter under 1 MB that keeps it or names it, and no log line, outcome or reason shows an address unmasked",
    { values: FastCheck.array(PoisonValue, { minLength: 1, maxLength: 6 }) },
    ({ values }) =>
      Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        capturedLogs.length = 0
        const records: Array<KafkaRecord> = values.map((v, i) => ({
          topic: TOPIC,
          partition: i % 3,
          offset: BigInt(1000 + i),
          key: `k${i}`,
          // as the consumer decodes it
          value: stringDeserializers.value(v.bytes === undefined ? undefined : Buffer.from(v.bytes)) as string,
          ...(v.undecodable === true
            ? { key: undefined as unknown as string, headers: new Map([[UNDECODABLE_HEADER, "a zstd batch that could not be decoded (test)"]]) }
            : {})
        }))
        const results: Array<readonly [KafkaRecord, Result]> = []
        yield* Effect.flatMap(Delivery, (d) =>
          Stream.runForEach(d.runTagged(Stream.fromIterable(records), readRecord), (r) => Effect.sync(() => results.push(r)))).pipe(
            Effect.provide(deliveryLayer(sim.url, { concurrency: 4 }))
          )
        expect(results.map(([r]) => r)).toStrictEqual(records)
        const at = new Date()
        const shown: Array<string> = [...capturedLogs]
        for (const [record, result] of results) {
          shown.push(outcomeLine(result))
          // Never read as an event: dead-lettered for its batch, and kept by reference below.
          if (undecodable(record) !== undefined) {
            expect(result.outcome).toMatchObject({ outcome: "dead-lettered", error: "UndecodableBatch" })
          }
          const letter = deadLetterMessage(TOPIC + "-dlq", record, result, at)
          if (letter === undefined) continue
          expect(Buffer.byteLength(letter.value)).toBeLessThanOrEqual(DEAD_LETTER_MAX_BYTES)
          expect(letter.headers.get("signal-mailjet-source")).toBe(`${TOPIC}/${record.partition}/${record.offset}`)
          const parsed = JSON.parse(letter.value) as Record<string, unknown>
          shown.push(String(parsed["reason"]), String(parsed["omitted"] ?? ""))
          if (undecodable(record) !== undefined) expect(String(parsed["omitted"])).toContain("its batch could not be decoded")
          if ("omitted" in parsed) expect(parsed["source"]).toBe(`${TOPIC}/${record.partition}/${record.offset}`)
          else expect(readDeadLetter(letter.value).text).toBe(record.value ?? "")
        }
        const emails = values.flatMap((v) => v.emails)
        for (const line of shown) for (const email of emails) expect(line).not.toContain(email)
      }),
    { fastCheck: { numRuns: 60 } }
  )
})
