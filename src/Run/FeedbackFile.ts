/**
 * `deliver --feedback FILE`: the suppressions a run learns, as Signal events a consent system can
 * consume (Suppressions.feedbackEvent), appended to a file: the list's unsubscribed contacts read
 * at preflight, then each `unsub` the run sends and each unsubscribed contact the list's view read
 * in the background adds, written with the outcome lines of its chunk (and once more at the end).
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import { feedbackEvent, type Learnt, type Suppression, type SuppressionSet } from "../Suppressions.js"
import { OutputUnwritable } from "./NdjsonSink.js"

const learnt = (email: string, s: Suppression): Learnt => ({
  email,
  reason: s.reason,
  event: "unsub",
  at: s.at ?? new Date().toISOString()
})

/** Opens the file for appending; the returned effect writes what was learnt since it last ran. */
export const feedbackFile = (
  path: string,
  suppressions: SuppressionSet,
  initial: ReadonlyArray<readonly [string, Suppression]>
) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const file = yield* fs.open(path, { flag: "a" }).pipe(
      Effect.mapError((e) => new OutputUnwritable({ path, detail: e.message, what: "feedback file" }))
    )
    const pending = initial.map(([email, s]) => learnt(email, s))
    const push = (email: string, s: Suppression) => {
      pending.push(learnt(email, s))
    }
    // The run's own, and the list's unsubscribed read after the first send (a large list's view, read in the background).
    suppressions.observe({ added: push, lifted: () => undefined, learnt: push })
    const encoder = new TextEncoder()
    return Effect.suspend(() => {
      if (pending.length === 0) return Effect.void
      const text = pending.splice(0).map((l) => `${JSON.stringify(feedbackEvent(l))}\n`).join("")
      return file.writeAll(encoder.encode(text)).pipe(
        Effect.mapError((e) => new OutputUnwritable({ path, detail: e.message, what: "feedback file" }))
      )
    })
  })
