/**
 * The worker's commits (src/Kafka/Committer.ts) against a broker that refuses some of them, as it
 * does while the group rebalances: a partition's committed offset ends just past the last record of
 * its done prefix, whatever was refused on the way, and never moves back. A refused commit that was
 * dropped left the offset behind what the worker had sent, so the partition's next owner sent those
 * events again (WorkerScale's "run 2": event 1 of some contacts twice, at the first rebalances).
 */
import { describe, expect, it } from "@effect/vitest"
import type { Message } from "@platformatic/kafka"
import { Effect, Logger, LogLevel, Schema } from "effect"
import { makeCommitter } from "../src/Kafka/Committer.js"

type Record = Message<string, string, string, string>

/** A broker's commits, per partition in the order it accepted them; `answer` says whether it accepts the next one. */
const broker = (answer: () => boolean, during: () => void = () => undefined) => {
  const accepted = new Map<number, Array<bigint>>()
  const record = (partition: number, offset: bigint) =>
    ({
      partition,
      offset,
      commit: (done: (error?: Error | null) => void) => {
        // Marks that arrive while the commit is on its way (the sink goes on meanwhile).
        during()
        if (!answer()) return done(new Error("REBALANCE_IN_PROGRESS"))
        accepted.set(partition, [...(accepted.get(partition) ?? []), offset + 1n])
        done(null)
      }
    }) as unknown as Record
  const last = (partition: number) => accepted.get(partition)?.at(-1)
  return { accepted, record, last }
}

const quiet = <A>(e: Effect.Effect<A>) => Effect.runSync(Logger.withMinimumLogLevel(e, LogLevel.None))

describe("Committer", () => {
  it("a commit the broker refuses is not dropped: the run's last flush commits it, before the hand-over's release", () => {
    let refuse = true
    const b = broker(() => !refuse)
    const committer = makeCommitter("t")
    committer.mark(b.record(1, 0n), true)
    committer.mark(b.record(1, 1n), true)
    // The periodic flush takes the batch while the group rebalances, and gives up: it says so.
    expect(quiet(committer.flush(0))).toBe(false)
    expect(b.last(1)).toBeUndefined()
    // The group settled; the drain marked nothing more of partition 1: the last flush still commits it.
    refuse = false
    expect(quiet(committer.flush(0))).toBe(true)
    expect(b.last(1)).toBe(2n)
    expect(committer.committed().get(1)).toBe(2n)
  })

  it("a refused commit does not replace a later record of its partition marked meanwhile", () => {
    const answers = [false]
    let marked = false
    const b = broker(() => answers.shift() ?? true, () => {
      if (!marked) {
        marked = true
        committer.mark(b.record(0, 5n), true)
      }
    })
    const committer = makeCommitter("t")
    committer.mark(b.record(0, 3n), true)
    quiet(committer.flush(0))
    quiet(committer.flush(0))
    expect(b.accepted.get(0)).toEqual([6n])
  })

  const Op = Schema.Union(
    Schema.Struct({ _tag: Schema.Literal("Mark"), partition: Schema.Int.pipe(Schema.between(0, 2)), done: Schema.Boolean }),
    Schema.Struct({ _tag: Schema.Literal("Flush") })
  )
  /** The broker's answer to one commit, and how many marks of the input arrive while it is on its way. */
  const Answer = Schema.Struct({ accept: Schema.Boolean, during: Schema.Int.pipe(Schema.between(0, 3)) })

  it.prop(
    "law: whatever commits are refused on the way, a partition's committed offset ends just past the last record of its done prefix (nothing done is lost, nothing undone passed), never moves back, and a flush says whether all its commits landed",
    { ops: Schema.Array(Op).pipe(Schema.maxItems(40)), answers: Schema.Array(Answer).pipe(Schema.maxItems(20)) },
    ({ answers, ops }) => {
      const queue = [...ops]
      const script = [...answers]
      const offsets = new Map<number, bigint>()
      /** Each partition's marks, in input order: what the law is read from. */
      const marks = new Map<number, Array<boolean>>()
      let answering: (typeof answers)[number] | undefined
      let refused = 0
      const b = broker(
        () => (answering?.accept ?? true) || (refused++, false),
        () => {
          answering = script.shift()
          for (let i = 0; i < (answering?.during ?? 0); i++) {
            const next = queue[0]
            if (next?._tag !== "Mark") break
            queue.shift()
            mark(next)
          }
        }
      )
      const committer = makeCommitter("t")
      const mark = (op: Extract<(typeof ops)[number], { _tag: "Mark" }>) => {
        const offset = offsets.get(op.partition) ?? 0n
        offsets.set(op.partition, offset + 1n)
        marks.set(op.partition, [...(marks.get(op.partition) ?? []), op.done])
        committer.mark(b.record(op.partition, offset), op.done)
      }
      while (queue.length > 0) {
        const op = queue.shift()!
        if (op._tag === "Mark") mark(op)
        else {
          // A flush says whether every commit landed.
          const before = refused
          expect(quiet(committer.flush(0))).toBe(refused === before)
        }
      }
      // The run's last flush, the group settled: the broker accepts every commit, and it says so.
      script.length = 0
      expect(quiet(committer.flush(0))).toBe(true)
      for (const p of [0, 1, 2]) {
        const done = marks.get(p) ?? []
        const prefix = done.indexOf(false) === -1 ? done.length : done.indexOf(false)
        expect(b.last(p)).toBe(prefix === 0 ? undefined : BigInt(prefix))
        expect(committer.committed().get(p)).toBe(b.last(p))
        const seen = b.accepted.get(p) ?? []
        expect(seen.every((o, i) => i === 0 || o >= seen[i - 1]!)).toBe(true)
      }
    },
    { fastCheck: { numRuns: 300 } }
  )
})
