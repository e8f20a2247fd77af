/**
 * The `signal-mailjet` command line. Each command builds the layers it needs itself, so `--help`
 * works without any configuration and a bad configuration is reported before anything is sent.
 * One file per command; what they share is in Options.ts.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { DefaultPreset } from "../Preset/Preset.js"
import { Shutdown } from "../Run/Shutdown.js"
import { checkCommand } from "./CheckCommand.js"
import { contactCommand } from "./ContactCommand.js"
import { deliverCommand } from "./DeliverCommand.js"
import { eraseCommand } from "./EraseCommand.js"
import { argvProblem, commandName } from "./Argv.js"
import { colour, columns, helpWanted, renderHelp } from "./Help.js"
import { exit, stderr } from "./Options.js"
import { replayCommand } from "./ReplayCommand.js"
import { serveCommand } from "./ServeCommand.js"

// ---- simulate

const simulateCommand = Command.make(
  "simulate",
  {
    apiKey: Options.text("api-key").pipe(Options.optional, Options.withDescription("The API key the simulator accepts (default simulator-key). MAILJET_API_KEY is not read: a shell may hold a real key there.")),
    secretKey: Options.text("secret-key").pipe(Options.optional, Options.withDescription("The secret key the simulator accepts (default simulator-secret). MAILJET_SECRET_KEY is not read.")),
    port: Options.integer("port").pipe(Options.withDefault(3030), Options.withDescription("Port on 127.0.0.1 (0: any free port; default 3030).")),
    listId: Options.integer("list-id").pipe(Options.withDefault(1), Options.withDescription("The id of the one contact list (default 1).")),
    latency: Options.integer("latency-ms").pipe(Options.withDefault(0), Options.withDescription("Delay added to every reply, in milliseconds (default 0).")),
    maxRps: Options.integer("max-rps").pipe(Options.optional, Options.withDescription("Answer 429 (Mailjet's HTML body) beyond this many requests per second (default: no limit).")),
    errorRate: Options.float("error-rate").pipe(Options.withDefault(0), Options.withDescription("Share (0..1) of requests answered 500/503 (default 0).")),
    resetRate: Options.float("reset-rate").pipe(Options.withDefault(0), Options.withDescription("Share (0..1) of connections reset without a reply (default 0).")),
    outageAfter: Options.integer("outage-after").pipe(Options.optional, Options.withDescription("Seconds after start when a full outage (every request 503) begins (default: none).")),
    outageFor: Options.integer("outage-for").pipe(Options.withDefault(30), Options.withDescription("How many seconds the outage lasts (default 30).")),
    jobDuration: Options.integer("job-duration").pipe(Options.withDefault(0), Options.withDescription("Milliseconds a bulk job (managemanycontacts) runs before it ends (default 0).")),
    jobErrorRate: Options.float("job-error-rate").pipe(Options.withDefault(0), Options.withDescription("Share (0..1) of bulk jobs that end in Error or Abort, applying none of their contacts (default 0).")),
    jobStuckRate: Options.float("job-stuck-rate").pipe(Options.withDefault(0), Options.withDescription("Share (0..1) of bulk jobs that get stuck (default 0).")),
    jobStuckMs: Options.integer("job-stuck-ms").pipe(Options.optional, Options.withDescription("Milliseconds after which a stuck job ends after all and applies its contacts, late (default: never).")),
    bulkMaxContacts: Options.integer("bulk-max-contacts").pipe(Options.withDefault(5000), Options.withDescription("Contacts one managemanycontacts call may carry (400 above it; default 5000).")),
    presetProperties: Options.boolean("preset-properties").pipe(Options.withDescription("Start with the Default preset's contact properties defined, instead of a fresh account's (firstname, name, country, newsletter_sub).")),
    callbackRetryEvery: Options.integer("callback-retry-every").pipe(Options.withDefault(30), Options.withDescription("Seconds between retries of an event callback not answered 200 (Mailjet: 30; default 30).")),
    callbackRetryFor: Options.integer("callback-retry-for").pipe(Options.withDefault(86_400), Options.withDescription("Seconds an event callback is retried before it is given up (Mailjet: 24 hours; default 86400).")),
    seedContacts: Options.integer("seed-contacts").pipe(Options.withDefault(0), Options.withDescription("Start with this many contacts in the list (seed-1@example.com, …), to try a large list's start-up (default 0).")),
    seedUnsubRatio: Options.float("seed-unsub-ratio").pipe(Options.withDefault(0.01), Options.withDescription("Share (0..1) of the seeded contacts that are unsubscribed (default 0.01)."))
  },
  (o) =>
    Effect.gen(function*() {
      const Simulator = yield* Effect.promise(() => import("../Simulator/Simulator.js"))
      // Its own keys, never the shell's: real keys exported for Mailjet would make every local try a 401.
      const given = Option.isSome(o.apiKey) || Option.isSome(o.secretKey)
      const apiKey = Option.getOrElse(o.apiKey, () => "simulator-key")
      const secretKey = Option.getOrElse(o.secretKey, () => "simulator-secret")
      const keys = given ? "" : `MAILJET_API_KEY=${apiKey} MAILJET_SECRET_KEY=${secretKey} `
      const faults = {
        latencyMs: o.latency,
        errorRate: o.errorRate,
        resetRate: o.resetRate,
        jobDurationMs: o.jobDuration,
        jobErrorRate: o.jobErrorRate,
        jobStuckRate: o.jobStuckRate,
        ...(Option.isSome(o.jobStuckMs) ? { jobStuckMs: o.jobStuckMs.value } : {}),
        bulkMaxContacts: o.bulkMaxContacts,
        ...(Option.isSome(o.maxRps) ? { maxRps: o.maxRps.value } : {})
      }
      return yield* Effect.gen(function*() {
        const sim = yield* Simulator.Simulator
        yield* Console.log(`Mailjet simulator listening on ${sim.url} (contact list ${o.listId})`)
        // Built-in keys are not secrets: they only open this local simulator. Given ones may be real: never printed.
        yield* Console.log(
          given
            ? `credentials: API key ${Option.isSome(o.apiKey) ? "as given to --api-key" : apiKey}, secret key ${Option.isSome(o.secretKey) ? "as given to --secret-key" : secretKey}`
            : `credentials: MAILJET_API_KEY=${apiKey} MAILJET_SECRET_KEY=${secretKey} (its own; the shell's MAILJET_* keys are not used)`
        )
        yield* Console.log(`try: ${keys}MAILJET_BASE_URL=${sim.url} MAILJET_LIST_ID=${o.listId} signal-mailjet deliver events.ndjson`)
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
          faults,
          callbacks: { retryEveryMs: o.callbackRetryEvery * 1000, retryForMs: o.callbackRetryFor * 1000 },
          ...(o.seedContacts > 0 ? { seedContacts: { count: o.seedContacts, unsubscribedRatio: o.seedUnsubRatio } } : {})
        })),
        Effect.catchTag("ServeError", (e) =>
          Effect.zipRight(stderr(`signal-mailjet simulate: cannot listen on port ${o.port}: ${String(e.cause)}`), exit(2)))
      )
    })
).pipe(Command.withDescription("Run the local Mailjet simulator (Contacts API v3: auth, lists, managecontact, contactmetadata, contact, contactdata, listrecipient, eventcallbackurl, and injectable faults) until stopped. POST /_sim/recipient/{unsub|spam|bounce|blocked} with {\"Email\": …} acts as the recipient of a Mailjet email: the contact is unsubscribed and the event is posted to the registered callback URL. It starts like a fresh Mailjet account, whose only contact properties are firstname, name, country and newsletter_sub (with --preset-properties: the Default preset's)."))

// ---- demo

const demoCommand = Command.make("demo", {}, () => Effect.flatMap(Effect.promise(() => import("./Demo.js")), (m) => m.runDemo)).pipe(
  Command.withDescription(
    "Start the simulator in this process, deliver the bundled example events and print what was sent, what Mailjet answered, and the list's contacts. Needs no credentials."
  )
)

export const subcommands = [deliverCommand, serveCommand, checkCommand, replayCommand, simulateCommand, demoCommand, contactCommand, eraseCommand] as const

export const command = Command.make("signal-mailjet").pipe(
  Command.withDescription("The Mailjet destination of Datafly Signal: keeps one Mailjet contact list current from Signal events."),
  Command.withSubcommands(subcommands)
)

const runCommand = Command.run(command, { name: "signal-mailjet", version: "0.1.0" })

/**
 * `-` (stdin) as the file, moved after the options: @effect/cli stops looking for options at an
 * argument that starts with `-`, so `deliver - --dead-letters f` was "unknown argument". Only a `-`
 * right after the command name is moved: elsewhere it may be an option's value.
 */
export const stdinLast = (argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const at = argv.findIndex((arg, i) => arg === "-" && i > 0 && argv[i - 1] === "deliver")
  return at < 0 ? argv : [...argv.slice(0, at), ...argv.slice(at + 1), "-"]
}

const printHelp = (wanted: NonNullable<ReturnType<typeof helpWanted>>) =>
  Effect.sync(() => void process.stdout.write(renderHelp("signal-mailjet", wanted, subcommands, colour(), columns())))

export const run = (argv: ReadonlyArray<string>) => {
  const args = stdinLast(argv)
  // No command is a usage error: the help, and exit 2, so a script that lost its arguments fails.
  if (args.length <= 2) {
    return printHelp({ name: "", command }).pipe(
      Effect.zipRight(stderr(`signal-mailjet: give a command: ${subcommands.map(commandName).join(", ")}`)),
      Effect.zipRight(exit(2))
    )
  }
  const wanted = helpWanted(command, subcommands, args.slice(2))
  if (wanted !== undefined) return printHelp(wanted)
  const problem = argvProblem("signal-mailjet", subcommands, args.slice(2))
  return problem === undefined ? runCommand(args) : Effect.zipRight(stderr(problem), exit(2))
}
