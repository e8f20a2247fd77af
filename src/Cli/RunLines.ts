/**
 * `deliver` and `replay` as a run session: lines from a file or stdin, outcome lines on stdout,
 * dead letters to a file, the summary on stderr, and the exit code from how the run ended.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Option from "effect/Option"
import { Delivery } from "../Delivery/Delivery.js"
import { runStack } from "../Delivery/Stack.js"
import type { Item } from "../Delivery/Prepare.js"
import type { RunStopped } from "../Delivery/RunState.js"
import { Preflight, type PreflightReport } from "../Mailjet/Preflight.js"
import { numbered, withoutText } from "../Delivery/Prepare.js"
import type { Result } from "../Domain/Outcome.js"
import { DEFAULT_MAX_LINE_BYTES, type InputUnreadable, readBoundedLines } from "../Run/Ndjson.js"
import { feedbackFile } from "../Run/FeedbackFile.js"
import { ndjsonSink } from "../Run/NdjsonSink.js"
import { DEFAULT_SHUTDOWN_TIMEOUT, readUntil, run, type SessionEnd } from "../Run/Session.js"
import { Shutdown } from "../Run/Shutdown.js"
import { Suppressions } from "../Suppressions.js"
import { StateStore } from "../Run/StateStore.js"
import * as SnapshotFile from "../Run/SnapshotFile.js"
import * as TombstoneFile from "../Run/TombstoneFile.js"
import * as Layer from "effect/Layer"
import type { Tombstones } from "../Domain/Tombstones.js"
import type * as ConfigError from "effect/ConfigError"
import type { TopicUnreadable } from "../Kafka/DeadLetterTopic.js"
import type { StateUnusable } from "../Run/StateStore.js"
import {
  allowMissingOption,
  bulkOption,
  concurrencyOption,
  createMissingOption,
  deadLettersOption,
  exit,
  logFormatOption,
  missingProperties,
  presetOption,
  reportSetupErrors,
  stderr,
  withBulk,
  withConcurrency,
  withLogging
} from "./Options.js"

/** A line's result. Not a closure made for each chunk: V8 would compile it again for chunk after chunk. */
const resultOfLine = <M>(line: readonly [M, Result]): Result => line[1]

/** Erasures are remembered between runs, in the state directory. */
const fileTombstones = TombstoneFile.layer.pipe(Layer.provide(StateStore.layer))

/** The options `deliver` and `replay` share. */
export const runOptions = {
  deadLetters: deadLettersOption,
  concurrency: concurrencyOption,
  bulk: bulkOption,
  preset: presetOption,
  createMissing: createMissingOption,
  allowMissing: allowMissingOption,
  logFormat: logFormatOption,
  maxLineBytes: Options.integer("max-line-bytes").pipe(
    Options.withDescription(
      `A line longer than this many bytes is not read: it is dead-lettered as LineTooLong, by its line number, and the run goes on (default ${DEFAULT_MAX_LINE_BYTES}: 1 MiB).`
    ),
    Options.withDefault(DEFAULT_MAX_LINE_BYTES)
  )
}

export interface RunOptions {
  readonly deadLetters: Option.Option<string>
  readonly concurrency: Option.Option<number>
  readonly bulk: Option.Option<"auto" | "off" | "always">
  readonly preset: Option.Option<string>
  readonly createMissing: boolean
  readonly allowMissing: boolean
  readonly logFormat: "text" | "json"
  readonly maxLineBytes: number
  /** `deliver --feedback FILE`: the suppressions learnt, as Signal events (FeedbackFile). */
  readonly feedback?: Option.Option<string>
}

/**
 * `--feedback` promises the list's unsubscribed contacts: a view still read in the background when
 * the input is done is waited for, then written (a shutdown request skips the wait, and says so).
 */
const feedbackWhole = <E>(write: Effect.Effect<void, E>) =>
  Effect.gen(function*() {
    const report = yield* Preflight
    const set = yield* Suppressions
    const reading = report.unread === true || report.pending > 0
    const done = reading
      ? yield* Effect.raceFirst(
        Effect.zipRight(stderr("signal-mailjet: every event has its outcome; the list's unsubscribed contacts read in the background go to --feedback once read (Ctrl-C skips the wait)"), set.settled),
        Effect.as((yield* Shutdown).requested, false)
      )
      : true
    yield* write
    if (!done) yield* stderr("signal-mailjet: the feedback file lacks the list's unsubscribed contacts not read yet; `signal-mailjet check` reads them all")
  })

const printPreflight = (r: PreflightReport) =>
  Effect.gen(function*() {
    for (const p of r.created) yield* stderr(`signal-mailjet: created contact property "${p.name}" (${p.datatype})`)
    for (const m of r.missing) {
      yield* stderr(
        `signal-mailjet: contact property "${m.name}" (${m.datatype}) is not defined in Mailjet; sent without it (--allow-missing-properties): it is dead-lettered on its own as PropertyMissing, for a replay once it exists.`
      )
    }
    if (r.unread === true) {
      yield* stderr(
        "signal-mailjet: who is unsubscribed in this large list is read in the background (no view of it kept yet in MAILJET_STATE_DIR); meanwhile consent granted on an ordinary event asks Mailjet about its contact first, so it never re-subscribes one (MAILJET_RESUBSCRIBE=explicit)"
      )
    } else if (r.suppressed.length + r.pending > 0) {
      yield* stderr(
        `signal-mailjet: ${r.suppressed.length + r.pending} contacts of the list are unsubscribed in Mailjet: consent granted on an ordinary event will not re-subscribe them (MAILJET_RESUBSCRIBE=explicit); a Subscribed event will${
          r.pending === 0 ? "" : `. ${r.pending} of their addresses are read in the background; meanwhile consent granted asks Mailjet about its contact first`
        }`
      )
    }
    for (const m of r.mismatched) {
      yield* stderr(
        `signal-mailjet: contact property "${m.name}" is ${m.mailjet} in Mailjet but the preset writes ${m.preset}: values are converted to ${m.mailjet} where they can be, else the event is dead-lettered as InvalidContact.`
      )
    }
  })

const isRunStopped = (e: { readonly _tag: string }): e is RunStopped =>
  e._tag === "Unauthorized" || e._tag === "ListNotFound" || e._tag === "MailjetOutage" || e._tag === "BulkJobPending"

/** Why the run stopped early, for the summary: the error's tag, or the shutdown. */
const stoppedBy = <E extends { readonly _tag: string }>(end: SessionEnd<E>): string | undefined =>
  Option.match(end.failure, {
    onNone: () => (end.shutdown ? "Shutdown" : undefined),
    onSome: (e) => (e._tag === "MailjetOutage" ? "Outage" : isRunStopped(e) ? e._tag : undefined)
  })

/** Where a file or stdin stopped being read, for the summary and the command that resumes. */
export interface Resume {
  /** The input as given: a file, or `-` for stdin. */
  readonly source: string
  readonly maxLineBytes: number
  /** The first line of this run (`--from-line`). */
  readonly fromLine: number
}

/**
 * How far a run got: results come in input order, so the first not-attempted line is where a
 * resume starts (every line before it has its final outcome); with none, the line after the last read.
 */
const progress = (fromLine: number) => {
  let lastRead = fromLine - 1
  let firstUnsettled: number | undefined
  return {
    add: (results: ReadonlyArray<Result>) => {
      for (const r of results) {
        if (r.outcome.outcome === "not-attempted" && firstUnsettled === undefined) firstUnsettled = r.line
        if (r.line > lastRead) lastRead = r.line
      }
    },
    lastRead: () => lastRead,
    resumeAt: () => firstUnsettled ?? lastRead + 1
  }
}

/** Events (lines that are not blank) after `line`, counted by reading the file again, never held. */
const countAfter = (r: Resume, line: number) =>
  numbered(readBoundedLines(r.source, r.maxLineBytes)).pipe(
    Stream.filter((item) => item.line > line),
    Stream.runCount,
    Effect.option
  )

const shellWord = (word: string) => /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`

/** This run's own command line, with `--from-line` set to `line`. */
export const resumeCommand = (argv: ReadonlyArray<string>, line: number): string => {
  const args: Array<string> = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--from-line") i++
    else if (!argv[i]!.startsWith("--from-line=")) args.push(argv[i]!)
  }
  const at = args.indexOf("deliver")
  args.splice(at + 1, 0, "--from-line", String(line))
  return ["signal-mailjet", ...args].map(shellWord).join(" ")
}

const summaryLine = <E extends { readonly _tag: string }>(end: SessionEnd<E>, unread: Option.Option<number>, ms: number) => {
  const s = end.summary
  const stopped = stoppedBy(end)
  const erasures = s.erased + s.notFound === 0 ? "" : ` ${s.erased} erased, ${s.notFound} not found (erasure),`
  return `signal-mailjet: ${s.read} read, ${s.delivered} delivered,${erasures} ${s.dropped} dropped, ${s.deadLettered} dead-lettered, ${s.notAttempted} not attempted${
    Option.match(unread, { onNone: () => "", onSome: (n) => `, ${n} unread` })
  } in ${(ms / 1000).toFixed(1)} s${stopped === undefined ? "" : ` (stopped: ${stopped})`}`
}

/** The exit codes (README): 2 when the run stopped early or left events unsent, 1 with dead letters. */
const exitCode = <E>(end: SessionEnd<E>, unread: Option.Option<number>): number =>
  Option.isSome(end.failure) || end.summary.notAttempted > 0 || Option.getOrElse(unread, () => 0) > 0
    ? 2
    : end.summary.deadLettered > 0 || end.summary.partial > 0
    ? 1
    : 0

/** What a source may fail with: its message names the fix. */
type SourceError = { readonly _tag: string; readonly message: string }

const session = <S extends SourceError>(
  items: Stream.Stream<Item, S, FileSystem.FileSystem>,
  o: RunOptions,
  resume: Resume | undefined
) =>
  Effect.gen(function*() {
    const started = Date.now()
    yield* printPreflight(yield* Preflight)
    yield* Effect.forkScoped(
      Effect.andThen((yield* Shutdown).requested, stderr("signal-mailjet: shutting down: finishing events in flight"))
    )
    const write = yield* ndjsonSink(o.deadLetters)
    const feedbackPath = o.feedback !== undefined && Option.isSome(o.feedback) ? o.feedback.value : undefined
    const feedback = feedbackPath !== undefined
      ? yield* feedbackFile(feedbackPath, yield* Suppressions, (yield* Preflight).suppressed)
      : Effect.void
    const at = progress(resume?.fromLine ?? 1)
    const end = yield* run({
      source: ({ shutdown }) => readUntil(items, shutdown),
      read: (x) => x,
      hold: withoutText,
      sink: (items) => {
        const results = items.map(resultOfLine)
        at.add(results)
        return Effect.zipRight(write(results), feedback)
      },
      shutdownTimeout: DEFAULT_SHUTDOWN_TIMEOUT
    })
    const early = Option.isSome(end.failure) || end.shutdown
    if (feedbackPath !== undefined && !early) yield* feedbackWhole(feedback)
    // Stdin cannot be read again to count what is left; a file can, after the run.
    const unread = early && resume !== undefined && resume.source !== "-"
      ? yield* countAfter(resume, at.lastRead())
      : Option.none()
    yield* stderr(summaryLine(end, unread, Date.now() - started))
    if (end.summary.partial > 0) {
      yield* stderr(
        `signal-mailjet: ${end.summary.partial} delivered without some properties Mailjet refused; those properties alone were dead-lettered, for replay`
      )
    }
    if (Option.isSome(end.failure)) {
      const e = end.failure.value
      yield* stderr(`signal-mailjet: ${e.message}${isRunStopped(e) || resume !== undefined ? "" : "; the lines after it were not read"}`)
    }
    if (early && resume !== undefined && (end.summary.notAttempted > 0 || Option.getOrElse(unread, () => 1) > 0)) {
      const command = resumeCommand(process.argv.slice(2), at.resumeAt())
      yield* stderr(
        resume.source === "-"
          ? `signal-mailjet: every line before line ${at.resumeAt()} has its outcome; standard input cannot be read again, so to resume, send the same input again to: ${command}`
          : `signal-mailjet: every line before line ${at.resumeAt()} has its outcome; to resume: ${command}`
      )
    }
    return yield* exit(exitCode(end, unread))
  })

/**
 * A delivery run with everything `deliver` and `replay` share: `before` runs first (checks that
 * must pass before Mailjet is called), then preflight (while the layers are built), then the run.
 * With `resume` (deliver), a run that stops early says what was not read and how to resume.
 */
export const runLines = <E extends { readonly _tag: string }, R, S extends SourceError = InputUnreadable>(
  items: Stream.Stream<Item, S, FileSystem.FileSystem>,
  o: RunOptions,
  before: Effect.Effect<void, E, R> = Effect.void as Effect.Effect<void, E, R>,
  resume?: Resume,
  /** Where erasures are remembered: the state directory, unless given (`replay --topic`: the group's topic). */
  tombstones: Layer.Layer<Tombstones, ConfigError.ConfigError | StateUnusable | TopicUnreadable> = fileTombstones
) =>
  Effect.gen(function*() {
    const missing = yield* missingProperties(o)
    yield* before
    return yield* session(items, o, resume).pipe(
      Effect.scoped,
      Effect.provide(runStack(Delivery.layer, {
        preset: o.preset,
        overrides: { ...withConcurrency(o.concurrency), ...withBulk(o.bulk) },
        missing,
        kept: SnapshotFile.fromEnvironment
      })),
      Effect.provide(tombstones)
    )
  }).pipe(reportSetupErrors, withLogging(o))
