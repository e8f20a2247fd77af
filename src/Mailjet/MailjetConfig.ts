/**
 * Where and as whom to talk to Mailjet. Read from the environment by `MailjetConfig.layer`,
 * or built in code by `MailjetConfig.layerFrom` when embedded.
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { duration, positiveInt, requiredWithFallback } from "../internal/config.js"

export interface MailjetSettings {
  readonly apiKey: Redacted.Redacted<string>
  readonly secretKey: Redacted.Redacted<string>
  readonly listId: number
  readonly baseUrl: URL
  /** Limit for one HTTP attempt; retries get a fresh one. */
  readonly timeout: Duration.Duration
}

export const DEFAULT_BASE_URL = "https://api.mailjet.com"

const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "[::1]" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)

/**
 * `raw` with any `user:password@` replaced by `***@`, for echoing a URL that did not parse. Everything
 * up to the last `@` goes, since a password may itself hold `/`, `#` or `@`.
 */
export const withoutCredentials = (raw: string): string => {
  const at = raw.lastIndexOf("@")
  if (at < 0) return raw
  const scheme = raw.indexOf("://")
  const start = scheme >= 0 && scheme < at ? scheme + 3 : 0
  return `${raw.slice(0, start)}***${raw.slice(at)}`
}

/** Credentials must not cross the network in clear text, so plain http is only for a local simulator. */
export const parseBaseUrl = (raw: string): Either.Either<URL, string> => {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return Either.left(`not a URL: "${withoutCredentials(raw)}"`)
  }
  // Accepted, they would ride along in every request URL and in any message that shows it.
  if (url.username !== "" || url.password !== "") {
    return Either.left(
      `must not carry credentials (user:password@${url.hostname}): put the keys in MAILJET_API_KEY and MAILJET_SECRET_KEY`
    )
  }
  if (url.protocol === "https:") return Either.right(url)
  if (url.protocol === "http:" && isLoopback(url.hostname)) return Either.right(url)
  if (url.protocol === "http:") {
    return Either.left(`plain http is refused for ${url.hostname}: use https (http is allowed only for loopback addresses)`)
  }
  return Either.left(`must be an https URL (got ${url.protocol})`)
}

const nonBlankSecret = (name: string, fallback: string) =>
  requiredWithFallback(name, fallback, (n) => Config.redacted(n), (r: Redacted.Redacted<string>) => Redacted.value(r).trim() === "")

const baseUrl = Config.string("MAILJET_BASE_URL").pipe(
  Config.withDefault(DEFAULT_BASE_URL),
  Config.mapOrFail((raw) =>
    Either.mapLeft(parseBaseUrl(raw), (msg) => ConfigError.InvalidData(["MAILJET_BASE_URL"], msg))
  )
)

/** Every variable is checked, so one run reports every problem at once. */
export const mailjetSettings: Config.Config<MailjetSettings> = Config.all({
  apiKey: nonBlankSecret("MAILJET_API_KEY", "MJ_APIKEY_PUBLIC"),
  secretKey: nonBlankSecret("MAILJET_SECRET_KEY", "MJ_APIKEY_PRIVATE"),
  listId: positiveInt("MAILJET_LIST_ID"),
  baseUrl,
  timeout: duration("MAILJET_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10)))
})

export class MailjetConfig extends Context.Tag("signal-mailjet/MailjetConfig")<MailjetConfig, MailjetSettings>() {
  /** From the current ConfigProvider (the environment by default). */
  static readonly layer: Layer.Layer<MailjetConfig, ConfigError.ConfigError> = Layer.effect(
    MailjetConfig,
    mailjetSettings
  )

  /** For embedding: the same checks as the environment path, from values in code. */
  static readonly layerFrom = (input: {
    readonly apiKey: string | Redacted.Redacted<string>
    readonly secretKey: string | Redacted.Redacted<string>
    readonly listId: number
    readonly baseUrl?: string
    readonly timeout?: Duration.DurationInput
  }): Layer.Layer<MailjetConfig, ConfigError.ConfigError> =>
    Layer.effect(
      MailjetConfig,
      Effect.gen(function*() {
        const redact = (s: string | Redacted.Redacted<string>) => (Redacted.isRedacted(s) ? s : Redacted.make(s))
        const url = parseBaseUrl(input.baseUrl ?? DEFAULT_BASE_URL)
        if (Either.isLeft(url)) return yield* Effect.fail(ConfigError.InvalidData(["baseUrl"], url.left))
        if (!Number.isInteger(input.listId) || input.listId <= 0) {
          return yield* Effect.fail(ConfigError.InvalidData(["listId"], `must be a positive integer (got ${input.listId})`))
        }
        return {
          apiKey: redact(input.apiKey),
          secretKey: redact(input.secretKey),
          listId: input.listId,
          baseUrl: url.right,
          timeout: Duration.decode(input.timeout ?? Duration.seconds(10))
        }
      })
    )
}
