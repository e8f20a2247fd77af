/**
 * How the bulk-capable path gathers events (internal/gathered.ts).
 * Laws: whatever the input's chunks and the group size, the groups hold every item once, in input
 * order, none empty, each full but the last; a group that does not fill is handed on once its
 * linger has passed since its first item, not before, a group begun while reading waited for the
 * reader once its linger has passed since reading went on; a failing input hands on what it
 * gathered, then fails.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Option, Schema, Stream, TestClock } from "effect"
import { gathered } from "../src/internal/gathered.js"

/** Groups of at most `size` items; `linger` long. */
const groupsOf = (size: number, linger = Duration.hours(1)) => ({
  make: (): Array<number> => [],
  add: (g: Array<number>, item: number) => g.push(item) >= size,
  linger: () => linger
})

/** The input as chunks of the given sizes, numbered from 0. */
const chunked = (sizes: ReadonlyArray<number>) => {
  let next = 0
  return Stream.fromChunks(...sizes.map((n) => Chunk.unsafeFromArray(Array.from({ length: n }, () => next++))))
}

describe("gathered", () => {
  it.effect.prop(
    "law: every item once, in input order, in groups never empty and each full but the last",
    {
      chunks: Schema.Array(Schema.Int.pipe(Schema.between(0, 30))).pipe(Schema.maxItems(20)),
      size: Schema.Int.pipe(Schema.between(1, 12))
    },
    ({ chunks, size }) =>
      Effect.gen(function*() {
        const total = chunks.reduce((a, b) => a + b, 0)
        const groups = Chunk.toReadonlyArray(yield* Stream.runCollect(gathered(chunked(chunks), groupsOf(size))))
        expect(groups.flat()).toEqual(Array.from({ length: total }, (_, i) => i))
        for (const g of groups) expect(g.length).toBeGreaterThan(0)
        for (const g of groups.slice(0, -1)) expect(g.length).toBe(size)
        expect(groups.length).toBe(Math.ceil(total / size))
      })
  )

  it.effect("a group that does not fill is handed on once its linger has passed since its first item, not before", () =>
    Effect.gen(function*() {
      const taken: Array<ReadonlyArray<number>> = []
      // Two items, then nothing for a minute, then two more, then nothing.
      const input = Stream.make(1, 2).pipe(
        Stream.concat(Stream.fromEffect(Effect.as(Effect.sleep(Duration.seconds(60)), 3))),
        Stream.concat(Stream.make(4)),
        Stream.concat(Stream.never)
      )
      const fiber = yield* gathered(input, groupsOf(10, Duration.seconds(3))).pipe(
        Stream.runForEach((g) => Effect.sync(() => taken.push([...g]))),
        Effect.fork
      )
      yield* TestClock.adjust(Duration.millis(2999))
      expect(taken).toEqual([])
      yield* TestClock.adjust(Duration.millis(1))
      expect(taken).toEqual([[1, 2]])
      // The next group's linger starts with its own first item, at 60 s.
      yield* TestClock.adjust(Duration.millis(57_000))
      expect(taken).toEqual([[1, 2]])
      yield* TestClock.adjust(Duration.millis(2_999))
      expect(taken).toEqual([[1, 2]])
      yield* TestClock.adjust(Duration.millis(1))
      expect(taken).toEqual([[1, 2], [3, 4]])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("a group begun while reading waited for the reader gets its whole linger once reading goes on: a reader slow, then quick, still gets full groups", () =>
    Effect.gen(function*() {
      const taken: Array<ReadonlyArray<number>> = []
      // Plenty of input, four items every 100 ms.
      const input = Stream.iterate(0, (n) => n + 1).pipe(Stream.rechunk(4), Stream.mapChunksEffect((c) => Effect.as(Effect.sleep(Duration.millis(100)), c)))
      // The reader takes a minute over its first group, then takes the next ones at once.
      const fiber = yield* gathered(input, groupsOf(10, Duration.seconds(3))).pipe(
        Stream.take(6),
        Stream.runForEach((g) => Effect.flatMap(Effect.sync(() => taken.push([...g])), (n) => (n === 1 ? Effect.sleep(Duration.seconds(60)) : Effect.void))),
        Effect.fork
      )
      for (let t = 0; t < 700 && taken.length < 6; t++) yield* TestClock.adjust(Duration.millis(100))
      yield* Fiber.join(fiber)
      expect(taken.map((g) => g.length)).toEqual([10, 10, 10, 10, 10, 10])
      expect(taken.flat()).toEqual(Array.from({ length: 60 }, (_, i) => i))
    }))

  it.effect("a failing input hands on the group it gathered, then fails", () =>
    Effect.gen(function*() {
      const taken: Array<ReadonlyArray<number>> = []
      const input = Stream.concat(Stream.make(1, 2, 3), Stream.fail("unreadable" as const))
      const failure = yield* gathered(input, groupsOf(2)).pipe(
        Stream.runForEach((g) => Effect.sync(() => taken.push([...g]))),
        Effect.flip
      )
      expect(failure).toBe("unreadable")
      expect(taken).toEqual([[1, 2], [3]])
    }))

  it.effect("reading waits while a full group waits for its reader, besides the one gathering", () =>
    Effect.gen(function*() {
      let read = 0
      const input = Stream.fromChunks(...Array.from({ length: 10 }, (_, i) => Chunk.of(i))).pipe(Stream.tap(() => Effect.sync(() => read++)))
      const pull = yield* Stream.toPull(gathered(input, groupsOf(1)))
      const first = yield* pull
      expect(Chunk.toReadonlyArray(first)).toEqual([[0]])
      // However long the reader takes: one taken, one waiting for it, one gathering, then reading waits.
      yield* Effect.repeatN(Effect.yieldNow(), 50)
      expect(read).toBeLessThanOrEqual(4)
      expect(Option.isSome(yield* Effect.option(pull))).toBe(true)
    }).pipe(Effect.scoped))
})
