/** `signal-mailjet replay`: the events of a dead-letter file, or of serve's dead-letter topic, delivered again. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Fs from "node:fs"
import { numbered } from "../Delivery/Prepare.js"
import { InputUnreadable, readBoundedLines, readDeadLetter } from "../Run/Ndjson.js"
import { exit, reportSetupErrors, stderr } from "./Options.js"
import { runLines, runOptions } from "./RunLines.js"

/** The same file, by what it resolves to, when both exist. */
const sameFile = (a: string, b: string): boolean => {
  try {
    return Fs.realpathSync(a) === Fs.realpathSync(b)
  } catch {
    return false
  }
}

/** serve's delivery topic: KAFKA_TOPIC, else delivery-{SIGNAL_INTEGRATION_ID}, else the dead-letter topic's name without `-dlq`. */
const deliveryTopic = (dlq: string) =>
  Effect.map(
    Config.all([Config.option(Config.nonEmptyString("KAFKA_TOPIC")), Config.option(Config.nonEmptyString("SIGNAL_INTEGRATION_ID"))]),
    ([topic, id]) => Option.getOrElse(Option.orElse(topic, () => Option.map(id, (i) => `delivery-${i}`)), () => dlq.replace(/-dlq$/, ""))
  )

/** Every replayed item is guarded: what Mailjet holds decides what of it may still apply. */
const replayed = (line: number, record: string) => ({ line, replay: true, ...readDeadLetter(record) })

export const replayCommand = Command.make(
  "replay",
  {
    file: Args.file({ name: "DEAD_LETTER_FILE", exists: "yes" }).pipe(
      Args.withDescription("A dead-letter file written by --dead-letters."),
      Args.optional
    ),
    topic: Options.text("topic").pipe(
      Options.withDescription(
        "Replay serve's dead-letter topic (delivery-{id}-dlq) instead of a file: read from its start to its end as it is now, committing nothing. Needs KAFKA_BROKERS, and the KAFKA_SASL_* and KAFKA_TLS variables serve uses."
      ),
      Options.optional
    ),
    ...runOptions
  },
  (o) => {
    if (Option.isSome(o.topic) === Option.isSome(o.file)) {
      return Effect.zipRight(stderr("signal-mailjet replay: give a dead-letter file or --topic TOPIC, one of the two"), exit(2))
    }
    if (Option.isSome(o.topic)) {
      const topic = o.topic.value
      // Loaded on use: the Kafka client costs start-up time for every other command.
      return Effect.promise(() =>
        Promise.all([import("../Kafka/DeadLetterTopic.js"), import("../Kafka/KafkaConfig.js"), import("../Kafka/ErasureSharing.js")])
      ).pipe(
        Effect.flatMap(([{ readTopicToEnd }, { kafkaConnection }, { replayTombstones }]) =>
          Effect.flatMap(Effect.all([kafkaConnection, deliveryTopic(topic)]), ([connection, delivery]) =>
            runLines(
              Stream.zipWithIndex(readTopicToEnd(connection, topic)).pipe(
                Stream.map(([record, i]) =>
                  record.undecodable === undefined
                    ? replayed(i + 1, record.text)
                    : { line: i + 1, text: "", undecodable: record.undecodable }
                )
              ),
              o,
              Effect.void,
              undefined,
              // The group's erasures, on its suppressions topic (delivery-{id}-suppressions).
              replayTombstones(connection, `${delivery}-suppressions`)
            ))
        ),
        reportSetupErrors
      )
    }
    const file = Option.getOrThrow(o.file)
    return runLines(
      Stream.map(numbered(readBoundedLines(file, o.maxLineBytes)), (item) => item.tooLong === undefined ? replayed(item.line, item.text) : item),
      o,
      // Appending to the file being read would feed the replay its own dead letters without end.
      Option.isSome(o.deadLetters) && sameFile(file, o.deadLetters.value)
        ? Effect.fail(
          new InputUnreadable({
            source: file,
            detail: "it is also the --dead-letters file; write what fails again to a new file"
          })
        )
        : Effect.void
    )
  }
).pipe(
  Command.withDescription(
    "Deliver the events of a dead-letter file (or, with --topic, of serve's dead-letter topic) again, after fixing what the `reason` says, with the same outcome lines and exit codes as deliver. A replay never undoes a newer event of the same contact: what Mailjet holds decides what of it may still apply, and the outcome line names what did not. Use a new --dead-letters file for what fails again."
  )
)
