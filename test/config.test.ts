import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Option, Schema } from "effect"
import type { Config } from "effect"
import { deliverySettings } from "../src/Delivery/DeliveryConfig.js"
import { formatConfigError, parseDuration } from "../src/internal/config.js"
import { kafkaSettings } from "../src/Kafka/KafkaConfig.js"
import { mailjetSettings } from "../src/Mailjet/MailjetConfig.js"

const base = {
  MAILJET_API_KEY: "k",
  MAILJET_SECRET_KEY: "s",
  MAILJET_LIST_ID: "1",
  KAFKA_BROKERS: "127.0.0.1:9092",
  SIGNAL_INTEGRATION_ID: "int_1"
}

const read = <A>(config: Config.Config<A>, env: Record<string, string>) =>
  Effect.either(Effect.withConfigProvider(config, ConfigProvider.fromMap(new Map(Object.entries({ ...base, ...env })))))

/** Every duration variable, with the service config that reads it and the field it lands in. */
const variables = [
  ["MAILJET_TIMEOUT", mailjetSettings, "timeout"],
  ["MAILJET_RETRY_BASE", deliverySettings, "retryBase"],
  ["MAILJET_RETRY_MAX", deliverySettings, "retryMax"],
  ["KAFKA_COMMIT_INTERVAL", kafkaSettings, "commitInterval"],
  ["MAILJET_SHUTDOWN_TIMEOUT", kafkaSettings, "shutdownTimeout"]
] as const

const forms = [
  ["10s", Duration.seconds(10)],
  ["500ms", Duration.millis(500)],
  ["2m", Duration.minutes(2)],
  ["1h", Duration.hours(1)],
  ["1.5s", Duration.millis(1500)],
  ["10 seconds", Duration.seconds(10)],
  ["250 millis", Duration.millis(250)]
] as const

describe("duration variables", () => {
  for (const [name, config, field] of variables) {
    for (const [text, expected] of forms) {
      it.effect(`${name}=${text}`, () =>
        Effect.gen(function*() {
          const result = yield* read(config as Config.Config<unknown> as Config.Config<Record<string, unknown>>, { [name]: text })
          expect(Either.isRight(result)).toBe(true)
          if (Either.isRight(result)) {
            expect(Duration.toMillis(result.right[field] as Duration.Duration)).toBe(Duration.toMillis(expected))
          }
        }))
    }

    it.effect(`${name}=ten gives one line naming the variable`, () =>
      Effect.gen(function*() {
        const result = yield* read(config as Config.Config<unknown>, { [name]: "ten" })
        expect(Either.isLeft(result)).toBe(true)
        if (Either.isLeft(result)) {
          expect(formatConfigError(result.left)).toEqual([
            `${name}: expected a duration such as 10s, 500ms, 2m or "10 seconds" (got "ten")`
          ])
        }
      }))
  }

  for (const bad of ["-5s", "-1 seconds", "10", "10 s s", "s", "5x", ""]) {
    it(`parseDuration refuses ${JSON.stringify(bad)}`, () => {
      expect(Option.isNone(parseDuration(bad))).toBe(true)
    })
  }

  const Amount = Schema.Int.pipe(Schema.between(0, 100_000))
  const Unit = Schema.Literal("ms", "s", "m", "h")
  const long = { ms: "millis", s: "seconds", m: "minutes", h: "hours" } as const
  it.prop("law: a short form and Effect's long form of the same amount are the same duration", {
    n: Amount,
    unit: Unit,
    space: Schema.Literal("", " ")
  }, ({ n, space, unit }) => {
    const short = parseDuration(`${n}${space}${unit}`)
    const effects = Duration.decode(`${n} ${long[unit]}`)
    expect(Option.map(short, Duration.toMillis)).toEqual(Option.some(Duration.toMillis(effects)))
  })
})

describe("serve's HTTP variables, and positive integers", () => {
  it.effect("HTTP_HOST defaults to every interface, HTTP_MAX_CONNECTIONS to 256", () =>
    Effect.gen(function*() {
      const result = yield* read(kafkaSettings, {})
      expect(Either.map(result, (k) => [k.host, k.maxConnections])).toEqual(Either.right(["0.0.0.0", 256]))
      const set = yield* read(kafkaSettings, { HTTP_HOST: "127.0.0.1", HTTP_MAX_CONNECTIONS: "64" })
      expect(Either.map(set, (k) => [k.host, k.maxConnections])).toEqual(Either.right(["127.0.0.1", 64]))
      // An empty variable reads as unset, as everywhere in Effect's environment provider.
      expect(Either.map(yield* read(kafkaSettings, { HTTP_HOST: "" }), (k) => k.host)).toEqual(Either.right("0.0.0.0"))
    }))

  for (const [name, value, line] of [
    ["HTTP_MAX_CONNECTIONS", "0", "HTTP_MAX_CONNECTIONS: must be a positive integer, at most 9007199254740991 (got \"0\")"],
    ["HTTP_MAX_CONNECTIONS", "many", "HTTP_MAX_CONNECTIONS: must be a positive integer, at most 9007199254740991 (got \"many\")"],
    ["MAILJET_CONCURRENCY", "-3", "MAILJET_CONCURRENCY: must be a positive integer, at most 9007199254740991 (got \"-3\")"]
  ] as const) {
    it.effect(`${name}=${JSON.stringify(value)} gives one line naming the variable`, () =>
      Effect.gen(function*() {
        const result = yield* read((name === "MAILJET_CONCURRENCY" ? deliverySettings : kafkaSettings) as Config.Config<unknown>, { [name]: value })
        expect(Either.isLeft(result) ? formatConfigError(result.left) : result.right).toEqual([line])
      }))
  }
})

/** Every variable read by `positiveInt`, with the service config that reads it and the field it lands in. */
const counts = [
  ["MAILJET_LIST_ID", mailjetSettings, "listId"],
  ["MAILJET_CONCURRENCY", deliverySettings, "concurrency"],
  ["MAILJET_MAX_ATTEMPTS", deliverySettings, "maxAttempts"],
  ["MAILJET_OUTAGE_THRESHOLD", deliverySettings, "outageThreshold"],
  ["MAILJET_BULK_SIZE", deliverySettings, "bulkSize"]
] as const

describe("positive integer variables", () => {
  const readOne = (name: string, config: Config.Config<unknown>, text: string) =>
    Effect.runSync(read(config as Config.Config<Record<string, unknown>>, { [name]: text }))

  it.prop("law: a safe positive integer in digits reads back as itself", {
    n: Schema.Int.pipe(Schema.between(1, Number.MAX_SAFE_INTEGER)),
    variable: Schema.Literal(0, 1, 2, 3, 4)
  }, ({ n, variable }) => {
    const [name, config, field] = counts[variable]
    const result = readOne(name, config, String(n))
    expect(Either.map(result, (r) => r[field])).toEqual(Either.right(n))
  })

  // Zero, negatives, integers past 2^53 (they would be rounded to another number), decimals, words.
  const Bad = Schema.String.annotations({
    arbitrary: () => (fc) =>
      fc.oneof(
        fc.integer({ max: 0 }).map(String),
        fc.bigInt({ min: 2n ** 53n, max: 10n ** 30n }).map(String),
        fc.constantFrom("99999999999999999999", "9007199254740992", "1e3", "0x10", "7.5", "-1", "", "seven"),
        fc.string({ maxLength: 8 }).filter((s) => !/^\s*\d+\s*$/.test(s) || /^\s*0+\s*$/.test(s))
      )
  })
  it.prop("law: anything else is refused in one line that names the variable once, with what it got", {
    text: Bad,
    variable: Schema.Literal(0, 1, 2, 3, 4)
  }, ({ text, variable }) => {
    const [name, config] = counts[variable]
    const result = readOne(name, config, text)
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(formatConfigError(result.left)).toEqual([
        `${name}: must be a positive integer, at most 9007199254740991 (got ${JSON.stringify(text)})`
      ])
    }
  })

  it.effect("KAFKA_BROKERS, checked over its own read, is named once too", () =>
    Effect.gen(function*() {
      const result = yield* read(kafkaSettings, { KAFKA_BROKERS: "nope" })
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) expect(formatConfigError(result.left)).toEqual([`KAFKA_BROKERS: "nope" is not host:port`])
    }))
})
