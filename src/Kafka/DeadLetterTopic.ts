/**
 * `replay --topic`: a dead-letter topic as it is now, read from its start to the end offsets it
 * had when the read began, so a replay ends. A throwaway consumer group reads it and commits
 * nothing: the topic is left as it was, and `serve` never sees these reads.
 */
import { Consumer, stringDeserializers } from "@platformatic/kafka"
import type { Message } from "@platformatic/kafka"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { undecodable } from "./Codecs.js"
import { type KafkaConnection, connectionOptions } from "./KafkaConfig.js"
import { closing } from "./TopicReader.js"

export class TopicUnreadable extends Data.TaggedError("TopicUnreadable")<{ readonly topic: string; readonly detail: string }> {
  override get message(): string {
    return `Cannot read the topic ${this.topic}: ${this.detail}. Check the topic's name (serve's dead-letter topic is delivery-{SIGNAL_INTEGRATION_ID}-dlq), KAFKA_BROKERS and the SASL/TLS settings.`
  }
}

/** One record of the topic: its text, and where it came from (`topic/partition/offset`). */
export interface TopicRecord {
  readonly text: string
  readonly source: string
  /** The record's key, when it has one (the suppressions topic's records are keyed). */
  readonly key?: string
  /** Its batch could not be decoded (see Codecs): why; it has no text. */
  readonly undecodable?: string
}

export const readTopicToEnd = (connection: KafkaConnection, topic: string): Stream.Stream<TopicRecord, TopicUnreadable> => {
  const fail = (e: unknown) => new TopicUnreadable({ topic, detail: e instanceof Error ? e.message : String(e) })
  return Stream.unwrapScoped(Effect.gen(function*() {
    const consumer = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Consumer({
          ...connectionOptions(connection),
          groupId: `signal-mailjet-replay-${process.pid}-${Date.now()}`,
          deserializers: stringDeserializers,
          autocommit: false
        })
      ),
      // Bounded, as the stream's: a broker that is gone may never answer a close.
      (c) => closing("consumer", () => c.close(true), `replay of ${topic}`)
    )
    const ends = yield* Effect.tryPromise({ try: () => consumer.listOffsets({ topics: [topic] }), catch: fail })
    const pending = new Map(
      (ends.get(topic) ?? []).map((end, partition) => [partition, BigInt(end)] as const).filter(([, end]) => end > 0n)
    )
    if (pending.size === 0) return Stream.empty
    const records = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => consumer.consume({ topics: [topic], mode: "earliest", autocommit: false, maxWaitTime: 200 }),
        catch: fail
      }),
      (s) => closing("stream", () => s.close(), `replay of ${topic}`)
    )
    return Stream.fromAsyncIterable(records as AsyncIterable<Message<string, string, string, string>>, fail).pipe(
      Stream.filter((m) => {
        const end = pending.get(m.partition)
        if (end === undefined || m.offset >= end) return false
        if (m.offset + 1n >= end) pending.delete(m.partition)
        return true
      }),
      // Ends with the last record the topic had, rather than waiting for one more.
      Stream.takeUntil(() => pending.size === 0),
      Stream.map((m) => {
        const source = `${m.topic}/${m.partition}/${m.offset}`
        const reason = undecodable(m)
        return reason === undefined
          ? { text: m.value ?? "", source, ...(m.key === undefined || m.key === null ? {} : { key: m.key }) }
          : { text: "", source, undecodable: `${reason}; the record was not read: it is ${source}` }
      })
    )
  }))
}
