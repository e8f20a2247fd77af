/** Config helpers shared by the configuration services. */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/**
 * The variable a path names. A check mapped over `Config.string(NAME)` that names NAME in its error
 * gets NAME prefixed again by Effect: the same segment twice is one variable.
 */
const name = (path: ReadonlyArray<string>): string =>
  path.filter((segment, i) => segment !== path[i - 1]).join("_")

/**
 * One line per bad variable: `MAILJET_LIST_ID: must be a positive integer (got "abc")`.
 * Effect's own rendering nests And/Or and prints a missing secret as `<redacted>`.
 */
export const formatConfigError = (error: ConfigError.ConfigError): ReadonlyArray<string> => {
  const lines: Array<string> = []
  const walk = (e: ConfigError.ConfigError): void => {
    switch (e._op) {
      case "And":
      case "Or":
        walk(e.left)
        walk(e.right)
        return
      case "MissingData":
        lines.push(`${name(e.path)}: ${e.message.startsWith("Expected") ? "missing" : e.message}`)
        return
      default:
        lines.push(`${name(e.path)}: ${e.message}`)
    }
  }
  walk(error)
  return Array.from(new Set(lines))
}

/** A variable that must be set and not blank, with an alternative name accepted as a fallback. */
export const requiredWithFallback = <A>(
  name: string,
  fallback: string | undefined,
  read: (name: string) => Config.Config<A>,
  isBlank: (a: A) => boolean
): Config.Config<A> => {
  const names = fallback === undefined ? [name] : [name, fallback]
  return Config.all(names.map((n) => Config.option(read(n)))).pipe(
    Config.mapOrFail((values) => {
      const found = values.map((v) => Option.filter(v, (a) => !isBlank(a))).find(Option.isSome)
      return found
        ? Either.right(found.value)
        : Either.left(
          ConfigError.MissingData(
            [name],
            fallback === undefined ? "missing" : `missing (set ${name}, or Mailjet's own ${fallback})`
          )
        )
    })
  )
}

/**
 * A positive integer variable, in digits. Read as text: `Config.integer` takes `1e3` and `0x10`, and
 * rounds what is past 2^53, so `99999999999999999999` would name some other list.
 */
export const positiveInt = (name: string): Config.Config<number> =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) => {
      const text = raw.trim()
      const n = Number(text)
      return /^\d+$/.test(text) && Number.isSafeInteger(n) && n > 0
        ? Either.right(n)
        : Either.left(ConfigError.InvalidData(
          [], // Config.string(name) prefixes the name
          `must be a positive integer, at most ${Number.MAX_SAFE_INTEGER} (got ${JSON.stringify(raw)})`
        ))
    })
  )

const UNITS: Record<string, (n: number) => Duration.Duration> = {
  ms: Duration.millis,
  s: Duration.seconds,
  m: Duration.minutes,
  h: Duration.hours,
  d: Duration.days
}

/**
 * `10s`, `500ms`, `2m`, `1.5h`, `1d`, or Effect's own `10 seconds` (what `Config.duration` reads).
 * Negative durations are refused: every duration here is a wait or a limit.
 */
export const parseDuration = (raw: string): Option.Option<Duration.Duration> => {
  const text = raw.trim()
  const short = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(text)
  if (short !== null) return Option.some(UNITS[short[2]!]!(Number(short[1])))
  if (text.startsWith("-")) return Option.none()
  return Duration.decodeUnknown(text)
}

/** A duration variable in any form `parseDuration` reads, with one line naming it when bad. */
export const duration = (name: string): Config.Config<Duration.Duration> =>
  Config.string(name).pipe(
    Config.mapOrFail((raw) =>
      Either.fromOption(
        parseDuration(raw),
        () =>
          ConfigError.InvalidData(
            [], // Config.string(name) prefixes the name
            `expected a duration such as 10s, 500ms, 2m or "10 seconds" (got ${JSON.stringify(raw)})`
          )
      )
    )
  )
