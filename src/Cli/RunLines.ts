/**
 * `deliver` and `replay` as a run session: lines from a file or stdin, outcome lines on stdout,
 * dead letters to a file, the summary on stderr, and the exit code from how the run ended.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import { Delivery } from "../Delivery/Delivery.js"
import type { Item } from "../Delivery/Prepare.js"
import type { RunStopped } from "../Delivery/RunState.js"
import { Preflight, type PreflightReport } from "../Mailjet/Preflight.js"
import { DEFAULT_MAX_LINE_BYTES, type InputUnreadable } from "../Run/Ndjson.js"
import { feedbackFile } from "../Run/FeedbackFile.js"
import { ndjsonSink } from "../Run/NdjsonSink.js"
import { DEFAULT_SHUTDOWN_TIMEOUT, readUntil, run, type SessionEnd } from "../Run/Session.js"
import { Shutdown } from "../Run/Shutdown.js"
import { Suppressions } from "../Suppressions.js"
import {
  concurrencyOption,
  createMissingOption,
  deadLettersOption,
  exit,
  type LogLevelName,
  logFormatOption,
  logLevelOption,
  presetOption,
  reportSetupErrors,
  stderr,
  withConcurrency,
  withLogging
} from "./Options.js"

/** The options `deliver` and `replay` share. */
export const runOptions = {
  deadLetters: deadLettersOption,
  concurrency: concurrencyOption,
  preset: presetOption,
  createMissing: createMissingOption,
  logFormat: logFormatOption,
  logLevel: logLevelOption,
  maxLineBytes: Options.integer("max-line-bytes").pipe(
    Options.withDescription(
      "A line longer than this many bytes is not read: it is dead-lettered as LineTooLong, by its line number, and the run goes on."
    ),
    Options.withDefault(DEFAULT_MAX_LINE_BYTES)
  )
}

export interface RunOptions {
  readonly deadLetters: Option.Option<string>
  readonly concurrency: Option.Option<number>
  readonly preset: Option.Option<string>
  readonly createMissing: boolean
  readonly logFormat: "text" | "json"
  readonly logLevel: Option.Option<LogLevelName>
  readonly maxLineBytes: number
  /** `deliver --feedback FILE`: the suppressions learnt, as Signal events (FeedbackFile). */
  readonly feedback?: Option.Option<string>
}

const printPreflight = (r: PreflightReport) =>
  Effect.gen(function*() {
    for (const p of r.created) yield* stderr(`signal-mailjet: created contact property "${p.name}" (${p.datatype})`)
    for (const m of r.missing) {
      yield* stderr(
        `signal-mailjet: contact property "${m.name}" (${m.datatype}) is not defined in Mailjet: events that set it are delivered without it, and it is dead-lettered on its own as PropertyMissing. Create it, or rerun with --create-missing-properties.`
      )
    }
    if (r.suppressed.length > 0) {
      yield* stderr(
        `signal-mailjet: ${r.suppressed.length} contacts of the list are unsubscribed in Mailjet: consent granted on an ordinary event will not re-subscribe them (MAILJET_RESUBSCRIBE=explicit); a Subscribed event will`
      )
    }
    for (const m of r.mismatched) {
      yield* stderr(
        `signal-mailjet: contact property "${m.name}" is ${m.mailjet} in Mailjet but the preset writes ${m.preset}: values are converted to ${m.mailjet} where they can be, else the event is dead-lettered as InvalidContact.`
      )
    }
  })

const isRunStopped = (e: { readonly _tag: string }): e is RunStopped =>
  e._tag === "Unauthorized" || e._tag === "ListNotFound" || e._tag === "MailjetOutage"

/** Why the run stopped early, for the summary: the error's tag, or the shutdown. */
const stoppedBy = <E extends { readonly _tag: string }>(end: SessionEnd<E>): string | undefined =>
  Option.match(end.failure, {
    onNone: () => (end.shutdown ? "Shutdown" : undefined),
    onSome: (e) => (e._tag === "MailjetOutage" ? "Outage" : isRunStopped(e) ? e._tag : undefined)
  })

const summaryLine = <E extends { readonly _tag: string }>(end: SessionEnd<E>, ms: number) => {
  const s = end.summary
  const stopped = stoppedBy(end)
  return `signal-mailjet: ${s.read} read, ${s.delivered} delivered, ${s.dropped} dropped, ${s.deadLettered} dead-lettered, ${s.notAttempted} not attempted in ${
    (ms / 1000).toFixed(1)
  } s${stopped === undefined ? "" : ` (stopped: ${stopped})`}`
}

/** The exit codes (README): 2 when the run stopped early or left events unsent, 1 with dead letters. */
const exitCode = <E>(end: SessionEnd<E>): number =>
  Option.isSome(end.failure) || end.summary.notAttempted > 0
    ? 2
    : end.summary.deadLettered > 0 || end.summary.partial > 0
    ? 1
    : 0

/** What a source may fail with: its message names the fix. */
type SourceError = { readonly _tag: string; readonly message: string }

const session = <S extends SourceError>(items: Stream.Stream<Item, S, FileSystem.FileSystem>, o: RunOptions) =>
  Effect.gen(function*() {
    const started = Date.now()
    yield* printPreflight(yield* Preflight)
    yield* Effect.forkScoped(
      Effect.andThen((yield* Shutdown).requested, stderr("signal-mailjet: shutting down: finishing events in flight"))
    )
    const write = yield* ndjsonSink(o.deadLetters)
    const feedback = o.feedback !== undefined && Option.isSome(o.feedback)
      ? yield* feedbackFile(o.feedback.value, yield* Suppressions, (yield* Preflight).suppressed)
      : Effect.void
    const end = yield* run({
      source: ({ shutdown }) => readUntil(items, shutdown),
      read: (x) => x,
      sink: (items) => Effect.zipRight(write(items.map(([, r]) => r)), feedback),
      shutdownTimeout: DEFAULT_SHUTDOWN_TIMEOUT
    })
    yield* stderr(summaryLine(end, Date.now() - started))
    if (end.summary.partial > 0) {
      yield* stderr(
        `signal-mailjet: ${end.summary.partial} delivered without some properties Mailjet refused; those properties alone were dead-lettered, for replay`
      )
    }
    if (Option.isSome(end.failure)) {
      const e = end.failure.value
      yield* stderr(`signal-mailjet: ${e.message}${isRunStopped(e) ? "" : "; the lines after it were not read"}`)
    }
    return yield* exit(exitCode(end))
  })

/**
 * A delivery run with everything `deliver` and `replay` share: `before` runs first (checks that
 * must pass before Mailjet is called), then preflight (while the layers are built), then the run.
 */
export const runLines = <E extends { readonly _tag: string }, R, S extends SourceError = InputUnreadable>(
  items: Stream.Stream<Item, S, FileSystem.FileSystem>,
  o: RunOptions,
  before: Effect.Effect<void, E, R> = Effect.void as Effect.Effect<void, E, R>
) =>
  Effect.zipRight(
    before,
    session(items, o).pipe(
      Effect.scoped,
      Effect.provide(
        Delivery.layer.pipe(
          Layer.provideMerge(Preflight.layer({ createMissing: o.createMissing })),
          Layer.provideMerge(Delivery.parts({ preset: o.preset, overrides: withConcurrency(o.concurrency) }))
        )
      )
    )
  ).pipe(reportSetupErrors, withLogging(o))
