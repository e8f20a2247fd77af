/** `signal-mailjet replay`: the events of a dead-letter file, delivered again. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as Stream from "effect/Stream"
import { numbered } from "../Delivery/Prepare.js"
import { InputUnreadable, readDeadLetter, readLines } from "../Run/Ndjson.js"
import { runLines, runOptions } from "./RunLines.js"

/** The same file, by what it resolves to, when both exist. */
const sameFile = (a: string, b: string): boolean => {
  try {
    return Fs.realpathSync(a) === Fs.realpathSync(b)
  } catch {
    return false
  }
}

export const replayCommand = Command.make(
  "replay",
  {
    file: Args.file({ name: "DEAD_LETTER_FILE", exists: "yes" }).pipe(
      Args.withDescription("A dead-letter file written by --dead-letters.")
    ),
    ...runOptions
  },
  (o) =>
    runLines(
      Stream.map(numbered(readLines(o.file)), ({ line, text }) => ({ line, replay: true, ...readDeadLetter(text) })),
      o,
      // Appending to the file being read would feed the replay its own dead letters without end.
      Option.isSome(o.deadLetters) && sameFile(o.file, o.deadLetters.value)
        ? Effect.fail(
          new InputUnreadable({
            source: o.file,
            detail: "it is also the --dead-letters file; write what fails again to a new file"
          })
        )
        : Effect.void
    )
).pipe(
  Command.withDescription(
    "Deliver the events of a dead-letter file again (after fixing what the `reason` says), with the same outcome lines and exit codes as deliver. Use a new --dead-letters file for what fails again."
  )
)
