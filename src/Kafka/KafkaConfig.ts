/** Where `serve` consumes from and dead-letters to, and how it connects. From the environment. */
import { ProduceAcks, stringSerializers } from "@platformatic/kafka"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { duration, positiveInt } from "../internal/config.js"
import { decodeEveryBatch } from "./Codecs.js"

export type SaslMechanism = "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"

export interface KafkaSettings {
  readonly brokers: ReadonlyArray<string>
  readonly topic: string
  readonly groupId: string
  readonly deadLetterTopic: string
  readonly clientId: string
  readonly sasl: Option.Option<{
    readonly mechanism: SaslMechanism
    readonly username: string
    readonly password: Redacted.Redacted<string>
  }>
  readonly tls: boolean
  /** How often done offsets are committed (and at every stop). */
  readonly commitInterval: Duration.Duration
  /** HTTP port of /health, /ready, /metrics. */
  readonly port: number
  /** The address it listens on: every interface by default, since probes and Mailjet come from outside. */
  readonly host: string
  /** How many HTTP connections are held at once (WorkerHttp.limitConnections). */
  readonly maxConnections: number
  /** How long in-flight events may take to finish after SIGTERM. */
  readonly shutdownTimeout: Duration.Duration
  /** How long the worker waits, not ready, for a broker it cannot reach before it exits. */
  readonly outageTimeout: Duration.Duration
  /** How long the group waits for a silent member (a crashed worker) before its partitions move. */
  readonly sessionTimeout: Duration.Duration
}

const brokers = Config.string("KAFKA_BROKERS").pipe(
  Config.mapOrFail((raw) => {
    const list = raw.split(",").map((b) => b.trim()).filter((b) => b !== "")
    const bad = list.find((b) => !/^[^\s:]+:\d{1,5}$/.test(b))
    return list.length === 0
      ? Either.left(ConfigError.InvalidData(["KAFKA_BROKERS"], "must list at least one host:port"))
      : bad !== undefined
      ? Either.left(ConfigError.InvalidData(["KAFKA_BROKERS"], `"${bad}" is not host:port`))
      : Either.right(list)
  })
)

/** Topic, group and dead-letter topic follow Signal's naming from the integration id unless set. */
const names = Config.all({
  integrationId: Config.option(Config.nonEmptyString("SIGNAL_INTEGRATION_ID")),
  topic: Config.option(Config.nonEmptyString("KAFKA_TOPIC")),
  groupId: Config.option(Config.nonEmptyString("KAFKA_GROUP_ID")),
  deadLetterTopic: Config.option(Config.nonEmptyString("KAFKA_DLQ_TOPIC"))
}).pipe(
  Config.mapOrFail(({ deadLetterTopic, groupId, integrationId, topic }) => {
    const from = (o: Option.Option<string>, name: string, make: (id: string) => string) =>
      Option.orElse(o, () => Option.map(integrationId, make)).pipe(
        Either.fromOption(() =>
          ConfigError.MissingData([name], `missing (set SIGNAL_INTEGRATION_ID, or ${name} itself)`)
        )
      )
    return Either.all({
      topic: from(topic, "KAFKA_TOPIC", (id) => `delivery-${id}`),
      groupId: from(groupId, "KAFKA_GROUP_ID", (id) => `signal-mailjet-${id}`),
      deadLetterTopic: from(deadLetterTopic, "KAFKA_DLQ_TOPIC", (id) => `delivery-${id}-dlq`)
    }).pipe(Either.mapLeft((e) => e))
  })
)

const sasl = Config.all({
  mechanism: Config.option(Config.literal("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")("KAFKA_SASL_MECHANISM")),
  username: Config.option(Config.string("KAFKA_SASL_USERNAME")),
  password: Config.option(Config.redacted("KAFKA_SASL_PASSWORD"))
}).pipe(
  Config.mapOrFail(({ mechanism, password, username }) => {
    if (Option.isNone(mechanism)) return Either.right(Option.none())
    if (Option.isNone(username) || Option.isNone(password)) {
      return Either.left(
        ConfigError.MissingData(
          [Option.isNone(username) ? "KAFKA_SASL_USERNAME" : "KAFKA_SASL_PASSWORD"],
          "missing (KAFKA_SASL_MECHANISM is set)"
        )
      )
    }
    return Either.right(Option.some({ mechanism: mechanism.value, username: username.value, password: password.value }))
  })
)

/** Only what connecting takes: for a one-shot read of a topic (`replay --topic`), no names needed. */
export type KafkaConnection = Pick<KafkaSettings, "brokers" | "clientId" | "sasl" | "tls">

export const kafkaConnection: Config.Config<KafkaConnection> = Config.all({
  brokers,
  clientId: Config.string("KAFKA_CLIENT_ID").pipe(Config.withDefault("signal-mailjet")),
  sasl,
  tls: Config.boolean("KAFKA_TLS").pipe(Config.withDefault(false))
})

/**
 * The client options @platformatic/kafka takes for a connection. Every client goes through here, so
 * this is where the client learns to decode every batch (zstd on Node 20, see Codecs).
 */
export const connectionOptions = (k: KafkaConnection) => (decodeEveryBatch(), {
  clientId: k.clientId,
  bootstrapBrokers: [...k.brokers],
  ...(k.tls ? { tls: {} } : {}),
  ...(Option.isSome(k.sasl)
    ? {
      sasl: {
        mechanism: k.sasl.value.mechanism,
        username: k.sasl.value.username,
        password: Redacted.value(k.sasl.value.password)
      }
    }
    : {})
})

/** A producer of text records that waits for every in-sync replica: a write is stored once it is acknowledged. */
export const producerOptions = (k: KafkaConnection) => ({
  ...connectionOptions(k),
  serializers: stringSerializers,
  acks: ProduceAcks.ALL,
  autocreateTopics: true
})

/** `HTTP_MAX_CONNECTIONS`' default: probes, a scrape and Mailjet's posts need a few dozen at most. */
export const DEFAULT_MAX_CONNECTIONS = 256

export const kafkaSettings: Config.Config<KafkaSettings> = Config.all({
  connection: kafkaConnection,
  names,
  commitInterval: duration("KAFKA_COMMIT_INTERVAL").pipe(Config.withDefault(Duration.seconds(1))),
  port: Config.port("PORT").pipe(Config.withDefault(8080)),
  host: Config.nonEmptyString("HTTP_HOST").pipe(Config.withDefault("0.0.0.0")),
  maxConnections: positiveInt("HTTP_MAX_CONNECTIONS").pipe(Config.withDefault(DEFAULT_MAX_CONNECTIONS)),
  shutdownTimeout: duration("MAILJET_SHUTDOWN_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10))),
  outageTimeout: duration("KAFKA_OUTAGE_TIMEOUT").pipe(Config.withDefault(Duration.minutes(5))),
  sessionTimeout: duration("KAFKA_SESSION_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10)))
}).pipe(Config.map(({ connection, names, ...rest }) => ({ ...connection, ...rest, ...names })))

export class KafkaConfig extends Context.Tag("signal-mailjet/KafkaConfig")<KafkaConfig, KafkaSettings>() {
  static readonly layer = Layer.effect(KafkaConfig, kafkaSettings)
}
