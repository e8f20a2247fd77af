/** What the commands share: options, logging, exit codes, and how setup problems are reported. */
import * as Options from "@effect/cli/Options"
import * as ConfigError from "effect/ConfigError"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import type { DeliverySettings } from "../Delivery/DeliveryConfig.js"
import { missingPropertiesConfig } from "../Delivery/Stack.js"
import type { MissingProperties } from "../Mailjet/Preflight.js"
import { formatConfigError } from "../internal/config.js"

/** Ends a command with a process exit code; the message (if any) has been printed already. */
export class ExitCode extends Data.TaggedError("ExitCode")<{ readonly code: number }> {}

export const exit = (code: number) => (code === 0 ? Effect.void : Effect.fail(new ExitCode({ code })))
export const stderr = (text: string) => Effect.sync(() => process.stderr.write(`${text}\n`))

/** Errors that mean the run cannot start: printed as one line each (their message names the fix), exit 2. */
const SETUP_ERRORS = new Set([
  "PresetInvalid",
  "InputUnreadable",
  "OutputUnwritable",
  "Unauthorized",
  "ListNotFound",
  "RateLimited",
  "MailjetUnavailable",
  "PropertyRejected",
  "PropertiesMissing",
  "StateUnusable",
  "TopicUnreadable"
])

/** Configuration, preset, input and preflight problems: reported before anything is sent, exit 2. */
export const reportSetupErrors = <A, E extends { readonly _tag: string }, R>(self: Effect.Effect<A, E, R>) =>
  self.pipe(
    Effect.catchIf(
      (e): e is Extract<E, ConfigError.ConfigError> => ConfigError.isConfigError(e),
      (e) =>
        Effect.zipRight(
          stderr(
            `signal-mailjet: configuration error:\n${formatConfigError(e).map((l) => `  ${l}`).join("\n")}\nSee "Configuration" in the README.`
          ),
          exit(2)
        )
    ),
    Effect.catchIf(
      (e): e is Exclude<E, ConfigError.ConfigError | ExitCode> => SETUP_ERRORS.has(e._tag),
      (e) => Effect.zipRight(stderr(`signal-mailjet: ${(e as unknown as Error).message}`), exit(2))
    )
  )

export const presetOption = Options.file("preset", { exists: "either" }).pipe(
  Options.withDescription("A preset JSON file that extends or replaces the Default preset (else MAILJET_PRESET)."),
  Options.optional
)
export const concurrencyOption = Options.integer("concurrency").pipe(
  Options.withDescription("Events in flight at once (else MAILJET_CONCURRENCY, default 8). One contact's events always go in order."),
  Options.optional
)
export const bulkOption = Options.choice("bulk", ["auto", "off", "always"]).pipe(
  Options.withDescription("Bulk jobs (managemanycontacts): auto when the backlog outruns one call per event, off, or always (else MAILJET_BULK, default auto)."),
  Options.optional
)
export const deadLettersOption = Options.file("dead-letters").pipe(
  Options.withDescription("Append dead-lettered events to this NDJSON file, for `replay`."),
  Options.optional
)
export const createMissingOption = Options.boolean("create-missing-properties").pipe(
  Options.withDescription("Define contact properties the preset writes that Mailjet lacks, with the preset's datatype.")
)
export const allowMissingOption = Options.boolean("allow-missing-properties").pipe(
  Options.withDescription(
    "Send even though properties the preset writes are not defined in Mailjet: events are delivered without them, and each is dead-lettered on its own. Without this or --create-missing-properties, the run stops before sending (exit 2)."
  )
)

/** MAILJET_MISSING_PROPERTIES, `fail` unless set: serve's choice, and the default of the flags. */

/** What a run does with missing properties: the flags, else MAILJET_MISSING_PROPERTIES. */
export const missingProperties = (flags: { readonly createMissing: boolean; readonly allowMissing: boolean }) =>
  flags.createMissing && flags.allowMissing
    ? Effect.zipRight(
      stderr("signal-mailjet: give --create-missing-properties or --allow-missing-properties, not both"),
      Effect.fail(new ExitCode({ code: 2 }))
    )
    : flags.createMissing
    ? Effect.succeed<MissingProperties>("create")
    : flags.allowMissing
    ? Effect.succeed<MissingProperties>("allow")
    : missingPropertiesConfig("fail")
export const logFormatOption = Options.choice("log-format", ["text", "json"]).pipe(
  Options.withDescription("Log lines on stderr as logfmt text or JSON. Emails in logs are masked."),
  Options.withDefault("text" as const)
)
const consoleLoggers = {
  text: Logger.withConsoleError(Logger.logfmtLogger),
  json: Logger.withConsoleError(Logger.jsonLogger)
}

/**
 * Logs go to stderr, never stdout: stdout carries the outcome lines. The level is @effect/cli's own
 * `--log-level` (a built-in option of every command: it sets the minimum level around the run).
 */
export const loggerLayer = (format: "text" | "json"): Layer.Layer<never> =>
  // bin.ts installs one for every command and a command's --log-format installs its own: each
  // replaces whichever is there (`Logger.replace` would add a second, and every line came twice).
  Layer.scopedDiscard(Effect.locallyScopedWith(FiberRef.currentLoggers, (loggers) =>
    HashSet.add(
      HashSet.remove(HashSet.remove(HashSet.remove(loggers, Logger.defaultLogger), consoleLoggers.text), consoleLoggers.json),
      consoleLoggers[format]
    )))

export const withLogging = (o: { readonly logFormat: "text" | "json" }) =>
<A, E, R>(self: Effect.Effect<A, E, R>) => Effect.provide(self, loggerLayer(o.logFormat))

export const withConcurrency = (concurrency: Option.Option<number>): Partial<DeliverySettings> =>
  Option.match(concurrency, { onNone: () => ({}), onSome: (n) => ({ concurrency: n }) })
export const withBulk = (bulk: Option.Option<DeliverySettings["bulk"]>): Partial<DeliverySettings> =>
  Option.match(bulk, { onNone: () => ({}), onSome: (b) => ({ bulk: b }) })
