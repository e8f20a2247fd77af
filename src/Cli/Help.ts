/**
 * `--help`, rendered here rather than by @effect/cli's built-in: its USAGE reads `$ deliver`, each
 * option carries filler ("An integer.", "This setting is optional."), the built-in options repeat
 * ours, it has no place for environment variables, and it writes ANSI escapes into pipes.
 * The commands' own descriptions (Command/Options/Args.withDescription) are what is shown.
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as Usage from "@effect/cli/Usage"
import * as HashSet from "effect/HashSet"
import { LOG_LEVELS } from "./Argv.js"

// What @effect/cli says of every option of a type: nothing the option's own description does not.
const FILLER = new Set([
  "A user-defined piece of text.",
  "An integer.",
  "A floating point number.",
  "A true or false value.",
  "A file.",
  "A directory.",
  "A file or directory.",
  "An existing file.",
  "An existing directory.",
  "An existing file or directory.",
  "This setting is optional."
])
// @effect/cli's built-ins that do nothing a user of this tool needs.
const HIDDEN = ["--completions", "--wizard"]
const isFiller = (text: string) => FILLER.has(text) || text.startsWith("One of the following: ")

const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Highlight":
    case "Weak":
    case "Strong":
      return spanText(span.value)
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
  }
}

const withoutFiller = (doc: HelpDoc.HelpDoc): HelpDoc.HelpDoc => {
  switch (doc._tag) {
    case "Paragraph":
      return isFiller(spanText(doc.value)) ? HelpDoc.empty : doc
    case "Sequence":
      return HelpDoc.sequence(withoutFiller(doc.left), withoutFiller(doc.right))
    case "DescriptionList":
      return HelpDoc.descriptionList(
        doc.definitions.filter(([term]) => !HIDDEN.some((name) => spanText(term).startsWith(name))).map((
          [term, d]
        ) => [term, withoutFiller(d)] as [Span.Span, HelpDoc.HelpDoc]) as unknown as Parameters<
          typeof HelpDoc.descriptionList
        >[0]
      )
    default:
      return doc
  }
}

const MAILJET = [
  ["MAILJET_API_KEY", "required: the API key (MJ_APIKEY_PUBLIC is accepted too)"],
  ["MAILJET_SECRET_KEY", "required: the secret key (MJ_APIKEY_PRIVATE is accepted too)"],
  ["MAILJET_LIST_ID", "required: the contact list's numeric ID"],
  ["MAILJET_BASE_URL", "default https://api.mailjet.com; plain http only to a loopback address (the simulator)"],
  ["MAILJET_TIMEOUT", "default 10s: the limit of one HTTP attempt (10s, 500ms, 2m or \"10 seconds\")"]
] as const
const DELIVERY = [
  ["MAILJET_PRESET", "default: the Default preset; a preset JSON file (--preset overrides it)"],
  ["MAILJET_CONCURRENCY", "default 8: events in flight at once (--concurrency overrides it)"],
  ["MAILJET_MAX_RPS", "default 10: requests per second"],
  ["MAILJET_MAX_ATTEMPTS", "default 5: attempts per event while Mailjet is unavailable"],
  ["MAILJET_RETRY_BASE", "default 1s: the first retry delay, doubled each attempt"],
  ["MAILJET_RETRY_MAX", "default 30s: the longest retry delay"],
  ["MAILJET_OUTAGE_THRESHOLD", "default 20: consecutive failed calls that mean Mailjet is down"],
  ["MAILJET_CONSENT_CATEGORY", "default marketing: the consent category that drives the subscription"],
  ["MAILJET_RESUBSCRIBE", "default explicit: only a Subscribed event re-subscribes an unsubscribed contact; consent: any consent granted does"],
  ["MAILJET_MISSING_PROPERTIES", "default fail: stop when properties the preset writes are missing in Mailjet; create: define them; allow: send without them"],
  ["MAILJET_BULK", "default auto: bulk jobs (managemanycontacts) when the backlog outruns one call per event; always; off (--bulk overrides it)"],
  ["MAILJET_BULK_SIZE", "default 5000: contacts per bulk call"],
  ["MAILJET_BULK_JOB_TIMEOUT", "default 10m: how long a bulk job may run, and later updates of its contacts wait for it"]
] as const
const KAFKA = [
  ["KAFKA_BROKERS", "required: comma-separated host:port"],
  ["SIGNAL_INTEGRATION_ID", "required unless the three below are set: names the topic, group and dead-letter topic"],
  ["KAFKA_TOPIC", "default delivery-{SIGNAL_INTEGRATION_ID}"],
  ["KAFKA_GROUP_ID", "default signal-mailjet-{SIGNAL_INTEGRATION_ID}"],
  ["KAFKA_DLQ_TOPIC", "default delivery-{SIGNAL_INTEGRATION_ID}-dlq"],
  ["KAFKA_CLIENT_ID", "default signal-mailjet"],
  ["KAFKA_SASL_MECHANISM", "default none: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"],
  ["KAFKA_TLS", "default false: true connects with TLS (system CAs)"]
] as const
const STATE = [
  ["MAILJET_STATE_DIR", "default $XDG_STATE_HOME/signal-mailjet, else ~/.local/state/signal-mailjet: where erasures are remembered (tombstones, and the key they are hashed with), and the list's unsubscribed contacts are kept between runs"],
  ["MAILJET_TOMBSTONE_RETENTION", "default 1095 days (3 years): how long an erasure keeps older events from re-creating its contact"]
] as const
const COLOUR = [["NO_COLOR", "set: no colour in --help (none either when stdout is not a terminal)"]] as const

/** Each command's environment variables, with their defaults. */
const ENVIRONMENT: Readonly<Record<string, ReadonlyArray<readonly [string, string]>>> = {
  deliver: [...MAILJET, ...DELIVERY, ...STATE, ...COLOUR],
  replay: [...MAILJET, ...DELIVERY, ...KAFKA.filter(([n]) => n === "KAFKA_BROKERS" || n.startsWith("KAFKA_S") || n === "KAFKA_TLS"), ...STATE, ...COLOUR],
  serve: [
    ...MAILJET,
    ...DELIVERY,
    ...KAFKA,
    ["KAFKA_COMMIT_INTERVAL", "default 1s: how often done offsets are committed"],
    ["PORT", "default 8080: the HTTP port of /health, /ready, /metrics"],
    ["HTTP_HOST", "default 0.0.0.0 (probes, Prometheus and Mailjet come from outside): the HTTP address"],
    ["HTTP_MAX_CONNECTIONS", "default 256: HTTP connections held at once; at the cap the oldest without a request in progress is closed"],
    ["MAILJET_SHUTDOWN_TIMEOUT", "default 10s: how long in-flight events may take after SIGTERM"],
    ["KAFKA_SESSION_TIMEOUT", "default 10s: how long the group waits for a silent member (a crashed worker) before its partitions move; at least 6s (the broker's group.min.session.timeout.ms default)"],
    ["KAFKA_OUTAGE_TIMEOUT", "default 5m: how long to wait, not ready, for a broker that cannot be reached (or, at start, a suppressions topic that cannot be read)"],
    ["MAILJET_WEBHOOK_PASSWORD", "default none (endpoint off; set but empty is an error): Basic auth password of POST /mailjet/events"],
    ["MAILJET_WEBHOOK_USER", "default mailjet: its user"],
    ["KAFKA_FEEDBACK_TOPIC", "default none (off): where suppressions from Mailjet go as Mailjet Unsubscribed events"],
    ["MAILJET_TOMBSTONE_KEY", "default: derived from MAILJET_SECRET_KEY: the group's key for hashing erased addresses (set it before rotating the Mailjet key)"],
    ["MAILJET_SUPPRESSIONS_MAX_AGE", "default 1h: how long a starting worker uses the group's view of the list's unsubscribed contacts without reading the list; older, it is read again in the background"],
    STATE[1],
    ...COLOUR
  ],
  check: [...MAILJET, DELIVERY[0], DELIVERY[2], STATE[0], ...COLOUR],
  contact: [...MAILJET, ...COLOUR],
  erase: [...MAILJET, ...DELIVERY.filter(([n]) => /^MAILJET_(MAX_|RETRY_|OUTAGE)/.test(n)), ...STATE, ...COLOUR],
  simulate: [...COLOUR],
  demo: [...COLOUR]
}

/** The first paragraph of a command's help: its description. */
const firstParagraph = (doc: HelpDoc.HelpDoc): string | undefined => {
  switch (doc._tag) {
    case "Paragraph":
      return spanText(doc.value)
    case "Sequence":
      return firstParagraph(doc.left) ?? firstParagraph(doc.right)
    default:
      return undefined
  }
}

const definitions = (entries: ReadonlyArray<readonly [string, string]>) =>
  HelpDoc.descriptionList(
    entries.map(([name, text]) => [Span.text(name), HelpDoc.p(text)] as [Span.Span, HelpDoc.HelpDoc]) as unknown as Parameters<
      typeof HelpDoc.descriptionList
    >[0]
  )

/** The command `args` ask help for (`--help` or `-h` before any `--`), if they do. */
export const helpWanted = (
  root: Command.Command<any, any, any, any>,
  subcommands: ReadonlyArray<Command.Command<any, any, any, any>>,
  args: ReadonlyArray<string>
): { readonly name: string; readonly command: Command.Command<any, any, any, any> } | undefined => {
  const end = args.indexOf("--")
  const own = end < 0 ? args : args.slice(0, end)
  if (!own.includes("--help") && !own.includes("-h")) return undefined
  const sub = subcommands.find((c) => own[0] !== undefined && HashSet.has(Command.getNames(c), own[0]))
  return sub === undefined ? { name: "", command: root } : { name: own[0]!, command: sub }
}

/** Plain text unless stdout is a terminal and NO_COLOR is not set. */
export const colour = (): boolean => process.stdout.isTTY === true && (process.env["NO_COLOR"] ?? "") === ""

/** The terminal's width; 80 columns when stdout is not a terminal. */
export const columns = (): number => process.stdout.isTTY === true ? Math.max(40, process.stdout.columns ?? 80) : 80

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g
const visible = (text: string) => text.replace(ANSI, "").length

/**
 * Lines wider than `width` broken at spaces. A broken line goes on at its own indent, and a usage
 * line (`program …`) 4 columns in, so that it does not read as a second usage.
 */
export const wrap = (text: string, width: number, program: string): string =>
  text.split("\n").map((line) => {
    if (visible(line) <= width) return line
    const indent = /^ */.exec(line)![0]
    const more = indent + (line.startsWith(`${program} `) ? "    " : "")
    const out: Array<string> = []
    let current = ""
    for (const word of line.slice(indent.length).split(" ")) {
      const lead = out.length === 0 ? indent : more
      if (current !== "" && visible(lead + current + " " + word) > width) {
        out.push(lead + current)
        current = word
      } else {
        current = current === "" ? word : `${current} ${word}`
      }
    }
    out.push((out.length === 0 ? indent : more) + current)
    return out.join("\n")
  }).join("\n")

export const renderHelp = (
  program: string,
  wanted: { readonly name: string; readonly command: Command.Command<any, any, any, any> },
  subcommands: ReadonlyArray<Command.Command<any, any, any, any>>,
  ansi: boolean,
  width: number
): string => {
  const config = CliConfig.defaultConfig
  // A command's usage starts with its own name: the program's goes before it.
  const usage = wanted.name === ""
    ? [HelpDoc.p(`${program} <command> [options] [arguments]`), HelpDoc.p(`${program} <command> --help: that command's options`)]
    : Usage.enumerate(Command.getUsage(wanted.command), config).map((span) => HelpDoc.p(Span.concat(Span.text(`${program} `), span)))
  const commands = wanted.name === "" ? subcommands.map((c) => {
    const name = HashSet.values(Command.getNames(c)).next().value as string
    return [name, firstParagraph(Command.getHelp(c, config)) ?? ""] as const
  }) : []
  const env = ENVIRONMENT[wanted.name] ?? []
  const doc = HelpDoc.blocks([
    HelpDoc.h1("USAGE"),
    ...usage,
    ...(wanted.name === ""
      ? [
        HelpDoc.h1("DESCRIPTION"),
        HelpDoc.p(firstParagraph(Command.getHelp(wanted.command, config)) ?? ""),
        HelpDoc.h1("COMMANDS"),
        definitions(commands),
        HelpDoc.h1("OPTIONS"),
        HelpDoc.p(`Every command takes --log-level LEVEL (${LOG_LEVELS.join(", ")}; default info), -h/--help and --version.`)
      ]
      : [withoutFiller(Command.getHelp(wanted.command, config))]),
    ...(env.length === 0 ? [] : [HelpDoc.h1("ENVIRONMENT"), definitions(env)])
  ])
  const text = HelpDoc.toAnsiText(doc)
  return wrap(ansi ? text : text.replace(ANSI, ""), width, program)
}
