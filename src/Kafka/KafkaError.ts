/**
 * What a Kafka client failure is, told apart where the fix differs: a topic that does not exist,
 * no broker answering, anything else.
 */
import * as Data from "effect/Data"

export class KafkaUnavailable extends Data.TaggedError("KafkaUnavailable")<{
  readonly detail: string
  /** What the failure was found to be, when it names its fix (see `kafkaFailure`). */
  readonly kind?: { readonly _tag: "TopicMissing"; readonly topic: string } | { readonly _tag: "Unreachable" }
}> {
  override get message(): string {
    switch (this.kind?._tag) {
      case "TopicMissing":
        return `Kafka has no topic ${this.kind.topic}. Create it, with as many partitions as workers may share it (locally: scripts/kafka topic ${this.kind.topic} 6; otherwise with your platform's Kafka tooling), then start serve again; or set SIGNAL_INTEGRATION_ID or KAFKA_TOPIC to the topic Signal writes.`
      case "Unreachable":
        return `Kafka cannot be reached: no broker of KAFKA_BROKERS answered (${this.detail}). Check that Kafka runs (locally: scripts/kafka start) and that KAFKA_BROKERS lists its host:port; nothing past the last committed offset was acknowledged.`
      default:
        return `Kafka failed: ${this.detail}. Check KAFKA_BROKERS and the SASL/TLS settings; nothing past the last committed offset was acknowledged.`
    }
  }
}

/** Every message of an error and of the errors it wraps (the Kafka client nests them). */
const messagesOf = (e: unknown, depth = 0): Array<string> => {
  if (depth > 4 || typeof e !== "object" || e === null) return typeof e === "string" ? [e] : []
  const { message, code, errors, cause } = e as { message?: unknown; code?: unknown; errors?: unknown; cause?: unknown }
  return [
    ...(typeof message === "string" ? [message] : []),
    ...(typeof code === "string" ? [code] : []),
    ...(Array.isArray(errors) ? errors.flatMap((x) => messagesOf(x, depth + 1)) : []),
    ...messagesOf(cause, depth + 1)
  ]
}

/** A client failure, told apart where the fix differs: a topic that does not exist, no broker answering. */
export const kafkaFailure = (e: unknown): KafkaUnavailable => {
  const detail = (e instanceof Error ? e.message : String(e)).replace(/\.+$/, "")
  const all = messagesOf(e)
  const unknown = all.map((m) => /Unknown topic (\S+?)\.?$/.exec(m)).find((m) => m !== null)
  if (unknown) return new KafkaUnavailable({ detail, kind: { _tag: "TopicMissing", topic: unknown[1]! } })
  if (all.some((m) => /Cannot connect to any broker|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH/.test(m))) {
    return new KafkaUnavailable({ detail, kind: { _tag: "Unreachable" } })
  }
  return new KafkaUnavailable({ detail })
}

/** The suppressions topic could not be created, read or written. */
export class SuppressionsUnavailable extends Data.TaggedError("SuppressionsUnavailable")<{
  readonly topic: string
  readonly detail: string
  /** No broker answered at all: worth waiting for, and the fix is the broker, not the topic. */
  readonly unreachable?: boolean
  /** The delivery topic itself is missing (a mistyped integration id, say): nothing is created beside it. */
  readonly deliveryTopicMissing?: string
}> {
  override get message(): string {
    return this.deliveryTopicMissing !== undefined
      ? new KafkaUnavailable({ detail: this.detail, kind: { _tag: "TopicMissing", topic: this.deliveryTopicMissing } }).message
      : this.unreachable
      ? new KafkaUnavailable({ detail: this.detail, kind: { _tag: "Unreachable" } }).message
      : `Kafka failed on the suppressions topic ${this.topic}: ${this.detail}. Check KAFKA_BROKERS and that this client may create, read and write the topic (compacted, keyed by email).`
  }
}

/** SIGTERM came while the suppressions topic was still being read: nothing was consumed yet. */
export class StoppedBeforeReady extends Data.TaggedError("StoppedBeforeReady")<{}> {}
