/**
 * The `signal-mailjet` command line. Each command builds the layers it needs itself, so `--help`
 * works without any configuration and a bad configuration is reported before anything is sent.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as ConfigError from "effect/ConfigError"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Consent } from "../Consent.js"
import { Delivery, makeRunState, prepareLine, stopMessage, type StopReason } from "../Delivery/Delivery.js"
import type { DeliverySettings } from "../Delivery/DeliveryConfig.js"
import { formatConfigError, positiveInt } from "../internal/config.js"
import { MailjetClient } from "../Mailjet/MailjetClient.js"
import { MailjetConfig } from "../Mailjet/MailjetConfig.js"
import { Mapping } from "../Mapping.js"
import { checkSource, deadLetterEvents, readLines } from "../Run/Ndjson.js"
import { addToSummary, deadLetterLine, emptySummary, outcomeLine, type Result, type Summary } from "../Domain/Outcome.js"
import { isHealthy, preflight, type PreflightReport } from "../Mailjet/Preflight.js"
import { Shutdown } from "../Run/Shutdown.js"
import { DefaultPreset } from "../Preset/Preset.js"
import type { WorkerStatus } from "../Kafka/KafkaWorker.js"
import { contactCommand } from "./ContactCommand.js"

/** Ends a command with a process exit code; the message (if any) has been printed already. */
export class ExitCode extends Data.TaggedError("ExitCode")<{ readonly code: number }> {}

const exit = (code: number) => (code === 0 ? Effect.void : Effect.fail(new ExitCode({ code })))
const fail = (code: number) => Effect.fail(new ExitCode({ code }))
const stderr = (text: string) => Effect.sync(() => process.stderr.write(`${text}\n`))

/** Configuration and preset problems: one line each, exit 2, before anything is sent. */
const reportSetupErrors = <A, E extends { readonly _tag: string }, R>(self: Effect.Effect<A, E, R>) =>
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
      (e): e is Extract<E, { _tag: "PresetInvalid" | "InputUnreadable" }> =>
        e._tag === "PresetInvalid" || e._tag === "InputUnreadable",
      (e) => Effect.zipRight(stderr(`signal-mailjet: ${(e as unknown as Error).message}`), exit(2))
    )
  )

// ---- shared options

const presetOption = Options.file("preset", { exists: "either" }).pipe(
  Options.withDescription("A preset JSON file that extends or replaces the Default preset (else MAILJET_PRESET)."),
  Options.optional
)
const concurrencyOption = Options.integer("concurrency").pipe(
  Options.withDescription("Events in flight at once (else MAILJET_CONCURRENCY, default 8). One contact's events always go in order."),
  Options.optional
)
const deadLettersOption = Options.file("dead-letters").pipe(
  Options.withDescription("Append dead-lettered events to this NDJSON file, for `replay`."),
  Options.optional
)
const createMissingOption = Options.boolean("create-missing-properties").pipe(
  Options.withDescription("Define contact properties the preset writes that Mailjet lacks, with the preset's datatype.")
)
const logFormatOption = Options.choice("log-format", ["text", "json"]).pipe(
  Options.withDescription("Log lines on stderr as logfmt text or JSON. Emails in logs are masked."),
  Options.withDefault("text" as const)
)
// Optional, and info by default: @effect/cli handles a `--log-level` flag itself (a built-in option):
// it strips the flag from the arguments and sets the minimum level around the whole run, so this
// option mostly sees nothing, and a default here used to override the level asked for.
const logLevelOption = Options.choice("log-level", ["debug", "info", "warning", "error", "none"]).pipe(
  Options.withDescription("The least severe log level printed on stderr (default info)."),
  Options.optional
)

const levels = {
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  error: LogLevel.Error,
  none: LogLevel.None
} as const

/** Logs go to stderr, never stdout: stdout carries the outcome lines. */
export const loggerLayer = (format: "text" | "json", level: Option.Option<keyof typeof levels> = Option.none()) =>
  Layer.merge(
    Logger.replace(
      Logger.defaultLogger,
      Logger.withConsoleError(format === "json" ? Logger.jsonLogger : Logger.logfmtLogger)
    ),
    Option.match(level, { onNone: () => Layer.empty, onSome: (l) => Logger.minimumLogLevel(levels[l]) })
  )

const withConcurrency = (concurrency: Option.Option<number>): Partial<DeliverySettings> =>
  Option.match(concurrency, { onNone: () => ({}), onSome: (n) => ({ concurrency: n }) })

// ---- deliver / replay

const printPreflight = (r: PreflightReport) =>
  Effect.gen(function*() {
    for (const p of r.created) yield* stderr(`signal-mailjet: created contact property "${p.name}" (${p.datatype})`)
    for (const m of r.missing) {
      yield* stderr(
        `signal-mailjet: contact property "${m.name}" (${m.datatype}) is not defined in Mailjet: events that set it will be dead-lettered as PropertyMissing. Create it, or rerun with --create-missing-properties.`
      )
    }
    for (const m of r.mismatched) {
      yield* stderr(
        `signal-mailjet: contact property "${m.name}" is ${m.mailjet} in Mailjet but the preset writes ${m.preset}: values are converted to ${m.mailjet} where they can be, else the event is dead-lettered as InvalidContact.`
      )
    }
  })

const summaryLine = (s: Summary, ms: number, stop: Option.Option<StopReason>) =>
  `signal-mailjet: ${s.read} read, ${s.delivered} delivered, ${s.dropped} dropped, ${s.deadLettered} dead-lettered, ${s.notAttempted} not attempted in ${
    (ms / 1000).toFixed(1)
  } s${Option.isSome(stop) ? ` (stopped: ${stop.value._tag === "Fatal" ? stop.value.error._tag : stop.value._tag})` : ""}`

/** Writes outcome lines (and dead letters) a chunk at a time: one write per chunk, not per event. */
const makeSinks = (deadLetters: Option.Option<string>) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const file = Option.isSome(deadLetters)
      ? Option.some(
        yield* fs.open(deadLetters.value, { flag: "a" }).pipe(
          Effect.catchAll((e) =>
            Effect.zipRight(stderr(`signal-mailjet: cannot open the dead-letter file: ${e.message}`), fail(2))
          )
        )
      )
      : Option.none()
    const encoder = new TextEncoder()
    return (results: ReadonlyArray<Result>) =>
      Effect.gen(function*() {
        let out = ""
        let dead = ""
        const now = new Date()
        for (const r of results) {
          out += `${outcomeLine(r)}\n`
          const d = deadLetterLine(r, now)
          if (d !== undefined) dead += `${d}\n`
        }
        if (Option.isSome(file) && dead !== "") yield* file.value.writeAll(encoder.encode(dead))
        yield* Effect.sync(() => process.stdout.write(out))
      })
  })

const SHUTDOWN_DEADLINE = Duration.seconds(10)

/** Preflight, then every line through delivery; the exit code follows design.md. */
const deliverLines = (
  lines: Stream.Stream<string, import("../Run/Ndjson.js").InputUnreadable, FileSystem.FileSystem>,
  options: { readonly deadLetters: Option.Option<string>; readonly createMissing: boolean }
) =>
  Effect.gen(function*() {
    const delivery = yield* Delivery
    const mapping = yield* Mapping
    const shutdown = yield* Shutdown
    const started = Date.now()
    const report = yield* preflight(mapping.preset, { createMissing: options.createMissing }).pipe(
      Effect.catchAll((e) => Effect.zipRight(stderr(`signal-mailjet: preflight failed: ${e.message}`), fail(2)))
    )
    yield* printPreflight(report)
    yield* delivery.useDatatypes(report.datatypes)

    const state = yield* makeRunState
    // After a shutdown request, in-flight events get a deadline; then the rest are not attempted.
    let stopReading = false
    yield* Effect.forkScoped(
      shutdown.requested.pipe(
        Effect.zipRight(Effect.sync(() => {
          stopReading = true
        })),
        Effect.zipRight(state.drain),
        Effect.zipRight(stderr("signal-mailjet: shutting down: finishing events in flight")),
        Effect.zipRight(Effect.sleep(SHUTDOWN_DEADLINE)),
        Effect.zipRight(state.stop({ _tag: "Shutdown" }))
      )
    )
    const write = yield* makeSinks(options.deadLetters)
    const summary = emptySummary()
    // Stop reading on a shutdown request. `interruptWhen` alone only wins its race while the read
    // is blocked: with input always ready (a backlog on stdin, a file) reading went on until the
    // deadline. So also end at the next chunk once requested; every line of a chunk already read
    // still gets its outcome.
    const untilShutdown = lines.pipe(
      Stream.interruptWhen(shutdown.requested),
      Stream.chunks,
      Stream.takeWhile(() => !stopReading),
      Stream.flattenChunks
    )
    const failure = yield* delivery.run(untilShutdown, state).pipe(
      Stream.runForEachChunk((chunk) => {
        const results = Array.from(chunk)
        for (const r of results) addToSummary(summary, r)
        return write(results)
      }),
      Effect.flip,
      Effect.option
    )
    const stop = yield* state.stopped
    yield* stderr(summaryLine(summary, Date.now() - started, stop))
    if (Option.isSome(stop) && stop.value._tag !== "Shutdown") yield* stderr(`signal-mailjet: ${stopMessage(stop.value)}`)
    if (Option.isSome(failure)) {
      yield* stderr(`signal-mailjet: ${failure.value.message}; the lines after it were not read`)
      return yield* exit(2)
    }
    return yield* exit(
      summary.notAttempted > 0 || (Option.isSome(stop) && stop.value._tag !== "Shutdown")
        ? 2
        : summary.deadLettered > 0
        ? 1
        : 0
    )
  })


/** `--dry-run`: the requests that would be sent, and no credentials needed. */
const dryRun = (lines: Stream.Stream<string, import("../Run/Ndjson.js").InputUnreadable, FileSystem.FileSystem>) =>
  Effect.gen(function*() {
    const mapping = yield* Mapping
    const consent = yield* Consent
    const listId = yield* Effect.orElseSucceed(
      // Only the list id: the credentials are not needed (and usually not set) for a dry run.
      Effect.map(positiveInt("MAILJET_LIST_ID"), String),
      () => "{MAILJET_LIST_ID}"
    )
    let physical = 0
    yield* lines.pipe(
      Stream.map((text) => ({ text, line: ++physical })),
      Stream.filter(({ text }) => text.trim() !== ""),
      Stream.map(({ line, text }) => {
        const p = prepareLine(text, line, consent.resolve, mapping, mapping.preset.datatypes)
        if (p._tag === "Done") return outcomeLine(p.result)
        return JSON.stringify({
          line: p.line,
          messageId: p.messageId,
          event: p.event,
          outcome: "dry-run",
          action: p.action,
          request: { method: "POST", path: `/v3/REST/contactslist/${listId}/managecontact`, body: p.body }
        })
      }),
      Stream.runForEachChunk((chunk) => Effect.sync(() => process.stdout.write(`${Array.from(chunk).join("\n")}\n`)))
    )
  })

const sourceArg = Args.text({ name: "FILE" }).pipe(
  Args.withDescription("NDJSON Signal events, one per line; `-` or nothing reads stdin."),
  Args.withDefault("-")
)

const withRuntime = <A, E, R>(
  logFormat: "text" | "json",
  logLevel: Option.Option<keyof typeof levels>,
  self: Effect.Effect<A, E, R>
) => Effect.provide(self, loggerLayer(logFormat, logLevel))

/** The options `deliver` and `replay` share. */
const runOptions = {
  deadLetters: deadLettersOption,
  concurrency: concurrencyOption,
  preset: presetOption,
  createMissing: createMissingOption,
  logFormat: logFormatOption,
  logLevel: logLevelOption
}

/** A delivery run with the layers, error reporting and logging `deliver` and `replay` share. */
const runLines = <A, E extends { readonly _tag: string }>(
  self: Effect.Effect<A, E, Delivery | Mapping | MailjetClient | Shutdown | FileSystem.FileSystem | Scope.Scope>,
  o: {
    readonly preset: Option.Option<string>
    readonly concurrency: Option.Option<number>
    readonly logFormat: "text" | "json"
    readonly logLevel: Option.Option<keyof typeof levels>
  }
) =>
  self.pipe(
    Effect.scoped,
    Effect.provide(Delivery.live({ preset: o.preset, overrides: withConcurrency(o.concurrency) })),
    reportSetupErrors,
    (e) => withRuntime(o.logFormat, o.logLevel, e)
  )

const deliverCommand = Command.make(
  "deliver",
  {
    file: sourceArg,
    dryRun: Options.boolean("dry-run").pipe(
      Options.withDescription("Print each request that would be sent (method, path, body); send nothing; no credentials needed.")
    ),
    ...runOptions
  },
  (o) => {
    const lines = readLines(o.file)
    if (o.dryRun) {
      return dryRun(lines).pipe(
        Effect.provide(Layer.merge(Consent.layer, Mapping.layer(o.preset))),
        reportSetupErrors,
        (e) => withRuntime(o.logFormat, o.logLevel, e)
      )
    }
    return runLines(Effect.zipRight(checkSource(o.file), deliverLines(lines, o)), o)
  }
).pipe(
  Command.withDescription(
    "Deliver Signal events (NDJSON, a file or stdin) to the Mailjet contact list. Prints one JSON outcome line per event on stdout, in input order, and a summary on stderr. Exit 0: all delivered or dropped; 1: some dead-lettered; 2: a fatal error (bad configuration, 401, unknown list, Mailjet down) stopped the run, and a rerun is safe."
  )
)

const replayCommand = Command.make(
  "replay",
  {
    file: Args.file({ name: "DEAD_LETTER_FILE", exists: "yes" }).pipe(
      Args.withDescription("A dead-letter file written by --dead-letters.")
    ),
    ...runOptions
  },
  (o) => runLines(deliverLines(deadLetterEvents(readLines(o.file)), o), o)
).pipe(
  Command.withDescription(
    "Deliver the events of a dead-letter file again (after fixing what the `reason` says), with the same outcome lines and exit codes as deliver. Use a new --dead-letters file for what fails again."
  )
)

// ---- check

const checkCommand = Command.make(
  "check",
  { preset: presetOption, createMissing: createMissingOption },
  (o) =>
    Effect.gen(function*() {
      const mapping = yield* Mapping
      const result = yield* Effect.either(preflight(mapping.preset, { createMissing: o.createMissing }))
      if (Either.isLeft(result)) {
        yield* stderr(`signal-mailjet check: ${result.left.message}`)
        return yield* exit(2)
      }
      const r = result.right
      yield* Console.log(`list ${r.list.id} "${r.list.name}": reachable with these credentials`)
      for (const [name, datatype] of mapping.preset.datatypes) {
        const created = r.created.some((c) => c.name.toLowerCase() === name.toLowerCase())
        const missing = r.missing.some((m) => m.name === name)
        const mismatch = r.mismatched.find((m) => m.name === name)
        yield* Console.log(
          missing
            ? `property ${name} (${datatype}): MISSING in Mailjet; create it or run check --create-missing-properties`
            : mismatch
            ? `property ${name}: Mailjet has ${mismatch.mailjet}, the preset writes ${datatype}: change one of them`
            : `property ${name} (${r.datatypes.get(name)}): ${created ? "created" : "ok"}`
        )
      }
      yield* Console.log(isHealthy(r) ? "all good" : "not ready: see the lines above")
      return yield* exit(isHealthy(r) ? 0 : 1)
    }).pipe(
      Effect.provide(Layer.mergeAll(
        MailjetClient.layer.pipe(Layer.provide(MailjetConfig.layer)),
        Mapping.layer(o.preset)
      )),
      reportSetupErrors
    )
).pipe(
  Command.withDescription(
    "Check the credentials, the list (GET contactslist/{id}) and every contact property the preset writes. Exit 0 only when all is well."
  )
)

// ---- simulate

const simulateCommand = Command.make(
  "simulate",
  {
    port: Options.integer("port").pipe(Options.withDefault(3030), Options.withDescription("Port on 127.0.0.1 (0: any free port).")),
    listId: Options.integer("list-id").pipe(Options.withDefault(1), Options.withDescription("The id of the one contact list.")),
    latency: Options.integer("latency-ms").pipe(Options.withDefault(0), Options.withDescription("Delay added to every reply.")),
    maxRps: Options.integer("max-rps").pipe(Options.optional, Options.withDescription("Answer 429 (Mailjet's HTML body) beyond this many requests per second.")),
    errorRate: Options.float("error-rate").pipe(Options.withDefault(0), Options.withDescription("Share (0..1) of requests answered 500/503.")),
    resetRate: Options.float("reset-rate").pipe(Options.withDefault(0), Options.withDescription("Share (0..1) of connections reset without a reply.")),
    outageAfter: Options.integer("outage-after").pipe(Options.optional, Options.withDescription("Seconds after start when a full outage (every request 503) begins.")),
    outageFor: Options.integer("outage-for").pipe(Options.withDefault(30), Options.withDescription("How many seconds the outage lasts.")),
    presetProperties: Options.boolean("preset-properties").pipe(Options.withDescription("Start with the Default preset's contact properties defined, instead of a fresh account's (firstname, name, country, newsletter_sub)."))
  },
  (o) =>
    Effect.gen(function*() {
      const Simulator = yield* Effect.promise(() => import("../Simulator/Simulator.js"))
      const given = process.env["MAILJET_API_KEY"] !== undefined
      const apiKey = process.env["MAILJET_API_KEY"] ?? "simulator-key"
      const secretKey = process.env["MAILJET_SECRET_KEY"] ?? "simulator-secret"
      const faults = {
        latencyMs: o.latency,
        errorRate: o.errorRate,
        resetRate: o.resetRate,
        ...(Option.isSome(o.maxRps) ? { maxRps: o.maxRps.value } : {})
      }
      return yield* Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* Console.log(`Mailjet simulator listening on ${sim.url} (contact list ${o.listId})`)
        // Built-in keys are not secrets: they only open this local simulator.
        yield* Console.log(
          given
            ? "credentials: the MAILJET_API_KEY and MAILJET_SECRET_KEY of this environment"
            : `credentials: MAILJET_API_KEY=${apiKey} MAILJET_SECRET_KEY=${secretKey}`
        )
        yield* Console.log(`try: MAILJET_BASE_URL=${sim.url} MAILJET_LIST_ID=${o.listId} signal-mailjet deliver events.ndjson`)
        if (Option.isSome(o.outageAfter)) {
          const after = o.outageAfter.value
          yield* Effect.fork(Effect.gen(function*() {
            yield* Effect.sleep(Duration.seconds(after))
            yield* sim.setFaults({ ...faults, outage: true })
            yield* Console.log(`outage: every request answered 503 for ${o.outageFor} s`)
            yield* Effect.sleep(Duration.seconds(o.outageFor))
            yield* sim.setFaults(faults)
            yield* Console.log("outage over")
          }))
        }
        // Until SIGINT or SIGTERM: the simulator's scope then closes its server.
        return yield* (yield* Shutdown).requested
      }).pipe(
        Effect.provide(Simulator.layer({
          apiKey,
          secretKey,
          port: o.port,
          lists: [{ id: o.listId, name: "Signal" }],
          ...(o.presetProperties ? { properties: Array.from(DefaultPreset.datatypes, ([name, datatype]) => ({ name, datatype })) } : {}),
          faults
        })),
        Effect.catchTag("ServeError", (e) =>
          Effect.zipRight(stderr(`signal-mailjet simulate: cannot listen on port ${o.port}: ${String(e.cause)}`), exit(2)))
      )
    })
).pipe(Command.withDescription("Run the local Mailjet simulator (Contacts API v3: auth, lists, managecontact, contactmetadata, contact, contactdata, listrecipient, and injectable faults) until stopped. It starts like a fresh Mailjet account, whose only contact properties are firstname, name, country and newsletter_sub; --preset-properties defines the Default preset's instead."))

// ---- serve

const serveCommand = Command.make(
  "serve",
  {
    preset: presetOption,
    concurrency: concurrencyOption,
    logFormat: logFormatOption,
    logLevel: logLevelOption
  },
  (o) =>
    // Loaded on use: the Kafka client alone costs a few hundred ms of start-up for every command.
    Effect.flatMap(
      Effect.promise(() => Promise.all([import("../Kafka/KafkaConfig.js"), import("../Kafka/KafkaWorker.js"), import("../Kafka/WorkerHttp.js")])),
      ([{ KafkaConfig }, { serve }, WorkerHttp]) =>
    Effect.gen(function*() {
      const kafka = yield* KafkaConfig
      const status = yield* Ref.make<WorkerStatus>({ preflight: false, joined: false, paused: false })
      yield* Layer.launch(WorkerHttp.layer(status, { port: kafka.port, host: process.env["HTTP_HOST"] ?? "0.0.0.0" })).pipe(
        Effect.catchAll((e) => Effect.zipRight(stderr(`signal-mailjet serve: cannot listen on port ${kafka.port}: ${String(e)}`), fail(2))),
        Effect.forkScoped
      )
      yield* serve(status).pipe(
        Effect.catchAll((e) => Effect.zipRight(stderr(`signal-mailjet serve: stopped: ${e.message}`), fail(2)))
      )
    }).pipe(
      Effect.scoped,
      Effect.provide(Layer.merge(
        Delivery.live({ preset: o.preset, overrides: withConcurrency(o.concurrency) }),
        KafkaConfig.layer
      )),
      reportSetupErrors,
      (e) => withRuntime(o.logFormat, o.logLevel, e)
    ))
).pipe(
  Command.withDescription(
    "Run Signal's delivery worker: consume delivery-{SIGNAL_INTEGRATION_ID} from KAFKA_BROKERS in a consumer group, deliver each event, dead-letter to delivery-{id}-dlq, and commit offsets only past events that are done. HTTP on PORT (default 8080): /health, /ready, /metrics. SIGTERM finishes in-flight events, commits and leaves the group. Exits non-zero on a fatal error (401, unknown list) with the fix in the message."
  )
)

// ---- demo

const demoCommand = Command.make("demo", {}, () => Effect.flatMap(Effect.promise(() => import("./Demo.js")), (m) => m.runDemo)).pipe(
  Command.withDescription(
    "Start the simulator in this process, deliver the bundled example events and print what was sent, what Mailjet answered, and the list's contacts. Needs no credentials."
  )
)

export const command = Command.make("signal-mailjet").pipe(
  Command.withDescription("The Mailjet destination of Datafly Signal: keeps one Mailjet contact list current from Signal events."),
  Command.withSubcommands([deliverCommand, serveCommand, checkCommand, replayCommand, simulateCommand, demoCommand, contactCommand])
)

export const run = Command.run(command, { name: "signal-mailjet", version: "0.1.0" })
