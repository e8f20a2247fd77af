/**
 * What `serve` does with one Kafka record besides delivering it: the text delivery reads, and the
 * dead letter it writes. Plain functions, so a test can feed them any bytes without a broker.
 */
import type { Message, Producer } from "@platformatic/kafka"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { deadLetterLine, type Result } from "../Domain/Outcome.js"
import { undecodable } from "./Codecs.js"

export type KafkaRecord =
  & Pick<Message<string, string, string, string>, "key" | "value" | "topic" | "partition" | "offset">
  & { readonly headers?: Message<string, string, string, string>["headers"] }

/** `topic/partition/offset`: where a record is, for a dead letter that keeps it by reference. */
export const recordSource = (r: KafkaRecord): string => `${r.topic}/${r.partition}/${r.offset}`

/** What delivery reads of a record: its value as text, numbered by its offset; or why its batch could not be decoded. */
export const readRecord = (r: KafkaRecord) => {
  const reason = undecodable(r)
  return {
    line: Number(r.offset),
    text: r.value ?? "",
    // Logged as partition= offset=: a record's offset is not a line.
    position: { partition: r.partition, offset: String(r.offset) },
    ...(reason === undefined ? {} : {
      undecodable: `${reason}; the record was not read, and stays in its topic. Have its producer use gzip, lz4 or zstd, and send it again`
    })
  }
}

export interface DeadLetterMessage {
  readonly topic: string
  readonly key?: string
  readonly value: string
  readonly headers: Map<string, string>
}

/**
 * The dead-letter topic's record for a result, or undefined when it has none. It fits Kafka's
 * default 1 MB limit whatever the input (the original by reference past 512 KiB); `refused` keeps
 * the original by reference whatever its size, for a topic that refused the record with it.
 */
export const deadLetterMessage = (
  topic: string,
  record: KafkaRecord,
  result: Result,
  at: Date,
  refused?: string
): DeadLetterMessage | undefined => {
  const source = recordSource(record)
  // A record of a batch that could not be decoded has nothing to keep: it stays in its topic.
  const kept = refused ?? (undecodable(record) === undefined ? undefined : "its batch could not be decoded")
  const value = deadLetterLine(result, at, { source, ...(kept === undefined ? {} : { refused: kept }) })
  return value === undefined ? undefined : {
    topic,
    ...(record.key ? { key: record.key } : {}),
    value,
    headers: new Map([["signal-mailjet-source", source]])
  }
}

/** The dead-letter topic refused a dead letter even with its original by reference: the partition stops before it. */
export class DeadLetterRefused extends Data.TaggedError("DeadLetterRefused")<{
  readonly topic: string
  readonly source: string
  readonly detail: string
}> {
  override get message(): string {
    return `the dead-letter topic ${this.topic} refused the dead letter of ${this.source}, even with its original kept by reference (${this.detail}). Let the worker produce to KAFKA_DLQ_TOPIC and give it a max.message.bytes of at least 16 KiB (1 MiB keeps every original); nothing from ${this.source} on was committed.`
  }
}

/** The broker could not be reached, or answered with an error it says may pass: retried, then an outage. */
export class DeadLetterUnavailable extends Data.TaggedError("DeadLetterUnavailable")<{ readonly detail: string }> {
  override get message(): string {
    return `cannot write to the dead-letter topic: ${this.detail}`
  }
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e))

/** The broker's error codes in a produce failure (an AggregateError of response errors of protocol errors). */
const brokerCodes = (e: unknown, depth = 0): ReadonlyArray<{ readonly code: string; readonly canRetry: boolean }> => {
  if (typeof e !== "object" || e === null || depth > 4) return []
  const { apiId, canRetry, errors } = e as { apiId?: unknown; canRetry?: unknown; errors?: unknown }
  const own = typeof apiId === "string" ? [{ code: apiId, canRetry: canRetry === true }] : []
  return Array.isArray(errors) ? [...own, ...errors.flatMap((x) => brokerCodes(x, depth + 1))] : own
}

/** The broker answered and will not take these records as they are: retrying the same bytes cannot help. */
export const refusal = (e: unknown): string | undefined => {
  const codes = brokerCodes(e).filter((c) => !c.canRetry)
  return codes.length === 0 ? undefined : `${[...new Set(codes.map((c) => c.code))].join(", ")}`
}

const RETRIES = Schedule.exponential("200 millis").pipe(Schedule.intersect(Schedule.recurs(5)))

/**
 * Writes the dead letters of a chunk, or fails; the caller commits nothing of the chunk on failure.
 * A refused record (too large for the topic's max.message.bytes, say) is written again with its
 * original by reference; refused even so, the partition must not move past it: DeadLetterRefused.
 * Anything else is retried with backoff, then reported as DeadLetterUnavailable (an outage).
 */
export const produceDeadLetters = (
  producer: Pick<Producer<string, string, string, string>, "send">,
  topic: string,
  items: ReadonlyArray<readonly [KafkaRecord, Result]>,
  at: Date = new Date()
): Effect.Effect<void, DeadLetterRefused | DeadLetterUnavailable> => {
  const letters = items.flatMap(([record, result]) => {
    const message = deadLetterMessage(topic, record, result, at)
    return message === undefined ? [] : [{ record, result, message }]
  })
  type Failure = { readonly refused: string } | DeadLetterUnavailable
  const send = (messages: ReadonlyArray<DeadLetterMessage>) =>
    Effect.tryPromise({
      try: () => producer.send({ messages: [...messages] }),
      catch: (e): Failure => {
        const refused = refusal(e)
        return refused === undefined ? new DeadLetterUnavailable({ detail: errorText(e) }) : { refused }
      }
    }).pipe(Effect.retry({ schedule: RETRIES, while: (f) => !("refused" in f) }), Effect.asVoid)
  if (letters.length === 0) return Effect.void
  return send(letters.map((l) => l.message)).pipe(
    Effect.catchAll((f) =>
      "refused" in f
        // One at a time, so only the refused ones lose their original.
        ? Effect.forEach(letters, ({ message, record, result }) =>
          send([message]).pipe(
            Effect.catchAll((g) => {
              if (!("refused" in g)) return Effect.fail(g)
              const smaller = deadLetterMessage(topic, record, result, at, `the dead-letter topic refused the record with it (${g.refused})`)!
              return Effect.zipRight(
                Effect.logWarning(`dead letter of ${recordSource(record)} refused by ${topic} (${g.refused}): written with its original by reference`),
                send([smaller]).pipe(
                  Effect.mapError((h) =>
                    "refused" in h ? new DeadLetterRefused({ topic, source: recordSource(record), detail: h.refused }) : h
                  )
                )
              )
            })
          ), { discard: true })
        : Effect.fail(f)
    )
  )
}
