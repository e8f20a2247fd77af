/** `signal-mailjet deliver`: Signal events from a file or stdin to the Mailjet contact list. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { Consent } from "../Consent.js"
import { type Item, numbered, prepareLine } from "../Delivery/Prepare.js"
import { outcomeLine } from "../Domain/Outcome.js"
import { positiveInt } from "../internal/config.js"
import { Mapping } from "../Mapping.js"
import { checkSource, type InputUnreadable, readBoundedLines, readLines } from "../Run/Ndjson.js"
import * as Stdout from "../Run/Stdout.js"
import { exit, reportSetupErrors, stderr, withLogging } from "./Options.js"
import { runLines, runOptions } from "./RunLines.js"

/** `--dry-run`: the requests that would be sent, and no credentials needed. */
const dryRun = (items: Stream.Stream<Item, InputUnreadable, FileSystem.FileSystem>) =>
  Effect.gen(function*() {
    const mapping = yield* Mapping
    const consent = yield* Consent
    const listId = yield* Effect.orElseSucceed(
      // Only the list id: the credentials are not needed (and usually not set) for a dry run.
      Effect.map(positiveInt("MAILJET_LIST_ID"), String),
      () => "{MAILJET_LIST_ID}"
    )
    yield* items.pipe(
      Stream.map(({ line, text }) => {
        const p = prepareLine(text, line, consent.resolve, mapping, mapping.preset.datatypes)
        if (p._tag === "Done") return outcomeLine(p.result)
        return JSON.stringify({
          line: p.line,
          messageId: p.messageId,
          event: p.event,
          outcome: "dry-run",
          action: p.erase === true ? "erase" : p.action,
          request: p.erase === true
            // The ID is the one the look-up finds: Mailjet's erasure answers 200 for any ID.
            ? { method: "DELETE", path: "/v4/contacts/{ID}", lookup: { method: "GET", path: "/v3/REST/contact/{Email}" }, body: { Email: p.email } }
            : { method: "POST", path: `/v3/REST/contactslist/${listId}/managecontact`, body: p.body }
        })
      }),
      // A chunk the --from-line filter emptied is no blank line.
      Stream.runForEachChunk((chunk) => chunk.length === 0 ? Effect.void : Stdout.write(`${Array.from(chunk).join("\n")}\n`))
    )
  })

export const deliverCommand = Command.make(
  "deliver",
  {
    file: Args.text({ name: "FILE" }).pipe(
      Args.withDescription("NDJSON Signal events, one per line; `-` or nothing reads stdin."),
      Args.withDefault("-")
    ),
    fromLine: Options.integer("from-line").pipe(
      Options.withDescription(
        "Start at this line of the input: the lines before it are read past, not sent, and outcome line numbers stay those of the input. A stopped run prints the command that resumes it."
      ),
      Options.withDefault(1)
    ),
    dryRun: Options.boolean("dry-run").pipe(
      Options.withDescription("Print each request that would be sent (method, path, body); send nothing; no credentials needed.")
    ),
    feedback: Options.file("feedback").pipe(
      Options.optional,
      Options.withDescription(
        "Append the suppressions this run learns (contacts Mailjet holds as unsubscribed, and each unsub it sends) to this file as Signal events {\"type\":\"track\",\"event\":\"Mailjet Unsubscribed\",…}, for a consent system to catch up. On a large list whose unsubscribed contacts are read in the background, the run waits for them once every event has its outcome (Ctrl-C skips the wait)."
      )
    ),
    ...runOptions
  },
  (o) => {
    // A terminal on stdin means nothing was piped in: say what the silence is waiting for.
    const hint = o.file === "-" && process.stdin.isTTY === true
      ? stderr("signal-mailjet: reading events from stdin (one JSON per line); Ctrl-D to end, or pass a file")
      : Effect.void
    // The last line read past, and whether the input ended: a --from-line past it is a mistake.
    let last = 0
    let ended = false
    const from = <A extends { readonly line: number }, E, R>(items: Stream.Stream<A, E, R>) =>
      o.fromLine > 1
        ? Stream.filter(items, (item) => {
          last = item.line
          return item.line >= o.fromLine
        }).pipe(Stream.onEnd(Effect.sync(() => void (ended = true))))
        : items
    const pastEnd = Effect.suspend(() =>
      ended && last < o.fromLine
        ? Effect.zipRight(
          stderr(
            `signal-mailjet deliver: --from-line ${o.fromLine} is past the end of ${o.file === "-" ? "the input" : o.file}, ${last === 0 ? "which holds no event" : `whose last event is on line ${last}`}: nothing was sent`
          ),
          exit(2)
        )
        : Effect.void
    )
    if (o.fromLine < 1) return Effect.zipRight(stderr("signal-mailjet deliver: --from-line counts from 1"), exit(2))
    if (o.dryRun) {
      return Effect.zipRight(hint, dryRun(from(numbered(readLines(o.file))))).pipe(
        Effect.zipRight(pastEnd),
        Effect.provide(Layer.merge(Consent.layer, Mapping.layer(o.preset))),
        reportSetupErrors,
        withLogging(o)
      )
    }
    // The input is checked before preflight calls Mailjet.
    return runLines(
      from(numbered(readBoundedLines(o.file, o.maxLineBytes))),
      o,
      Effect.zipRight(checkSource(o.file), hint),
      { source: o.file, maxLineBytes: o.maxLineBytes, fromLine: o.fromLine }
    ).pipe(Effect.zipRight(pastEnd))
  }
).pipe(
  Command.withDescription(
    "Deliver Signal events (NDJSON, a file or stdin) to the Mailjet contact list. Prints one JSON outcome line per event on stdout, in input order, and a summary on stderr. Exit 0: all delivered or dropped; 1: some dead-lettered; 2: a fatal error (bad configuration, 401, unknown list, Mailjet down) stopped the run, and a rerun is safe."
  )
)
