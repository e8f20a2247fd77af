/**
 * `orderedConcurrently`, delivery's lanes: order and conservation as laws over any input, any
 * chunking and any concurrency; the concurrency bound both ways; defects and early ends.
 */
import { expect, it } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Exit, Fiber, Schema, Stream, TestClock } from "effect"
import { orderedConcurrently } from "../src/Delivery/Lanes.js"

const Item = Schema.Struct({ value: Schema.Int, delayMs: Schema.Int.pipe(Schema.between(0, 5)) })

/** `items` as a stream cut into chunks of the given sizes (then the rest as one chunk). */
const chunked = <A>(items: ReadonlyArray<A>, sizes: ReadonlyArray<number>) => {
  const chunks: Array<Chunk.Chunk<A>> = []
  let at = 0
  for (const size of sizes) {
    if (at >= items.length) break
    chunks.push(Chunk.unsafeFromArray(items.slice(at, at + size)))
    at += size
  }
  if (at < items.length) chunks.push(Chunk.unsafeFromArray(items.slice(at)))
  return Stream.fromChunks(...chunks)
}

it.effect.prop(
  "every element comes out once, in input order, with at most `concurrency` running at once",
  {
    items: Schema.Array(Item).pipe(Schema.maxItems(60)),
    sizes: Schema.Array(Schema.Int.pipe(Schema.between(1, 30))).pipe(Schema.maxItems(8)),
    concurrency: Schema.Int.pipe(Schema.between(1, 12))
  },
  ({ concurrency, items, sizes }) =>
    Effect.gen(function*() {
      let running = 0
      let most = 0
      const work = (item: typeof Item.Type) =>
        Effect.gen(function*() {
          running++
          most = Math.max(most, running)
          yield* Effect.sleep(Duration.millis(item.delayMs))
          running--
          return item.value * 2
        })
      const fiber = yield* Effect.fork(Stream.runCollect(orderedConcurrently(chunked(items, sizes), work, concurrency)))
      // Virtual time: every delay passes without waiting for it.
      yield* TestClock.adjust(Duration.millis(5 * items.length + 5))
      const out = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      expect(out).toEqual(items.map((i) => i.value * 2))
      expect(most).toBeLessThanOrEqual(concurrency)
      expect(running).toBe(0)
    })
)

/** How an element runs: on a lane; started in plain code and done later, or its rest run on a lane; done at once. */
const Mode = Schema.Literal("lane", "plain", "plain-then-lane", "plain-at-once")

it.effect.prop(
  "law: elements started without a fiber (done later, in any order, or at once, or their rest on a lane) still come out once each, in input order, with at most `concurrency` running at once",
  {
    items: Schema.Array(Schema.Struct({ value: Schema.Int, mode: Mode })).pipe(Schema.maxItems(60)),
    sizes: Schema.Array(Schema.Int.pipe(Schema.between(1, 30))).pipe(Schema.maxItems(8)),
    // Which of the started elements is done next, in turn.
    picks: Schema.NonEmptyArray(Schema.Int.pipe(Schema.between(0, 1000))),
    concurrency: Schema.Int.pipe(Schema.between(1, 12))
  },
  ({ concurrency, items, picks, sizes }) =>
    Effect.gen(function*() {
      let running = 0
      let most = 0
      const begin = () => {
        running++
        most = Math.max(most, running)
      }
      const pending: Array<{ readonly value: number; readonly rest: boolean; readonly done: (b: Effect.Effect<number>) => void }> = []
      const work = (item: (typeof items)[number], done: (b: Effect.Effect<number>) => void) => {
        if (item.mode === "lane") {
          return Effect.suspend(() => {
            begin()
            return Effect.as(Effect.sync(() => running--), item.value * 2).pipe(Effect.delay(Duration.millis(1)))
          })
        }
        begin()
        if (item.mode === "plain-at-once") {
          running--
          done(Exit.succeed(item.value * 2))
        } else pending.push({ value: item.value, rest: item.mode === "plain-then-lane", done })
        return { cancel: () => {} }
      }
      const fiber = yield* Effect.fork(Stream.runCollect(orderedConcurrently(chunked(items, sizes), work, concurrency)))
      // Done in an order the picks choose, one a turn, while the stream runs (virtual time for the lanes' delays).
      for (let turn = 0; fiber.unsafePoll() === null; turn++) {
        if (turn > 20 * items.length + 100) return yield* Effect.dieMessage(`stalled: ${pending.length} started and not done`)
        yield* TestClock.adjust(Duration.millis(1))
        yield* Effect.yieldNow()
        if (pending.length === 0) continue
        const [x] = pending.splice(picks[turn % picks.length]! % pending.length, 1)
        if (x!.rest) x!.done(Effect.sync(() => (running--, x!.value * 2)))
        else {
          running--
          x!.done(Exit.succeed(x!.value * 2))
        }
      }
      const out = Chunk.toReadonlyArray(yield* Fiber.join(fiber))
      expect(out).toEqual(items.map((i) => i.value * 2))
      expect(most).toBeLessThanOrEqual(concurrency)
      expect(running).toBe(0)
    })
)

it.live("stopping early cancels what was started without a fiber, and starts nothing after", () =>
  Effect.gen(function*() {
    let started = 0
    let cancelled = 0
    const work = (n: number, done: (b: Effect.Effect<number>) => void) => {
      started++
      // The first piece (8) is done at once; the rest never answer.
      if (n <= 8) done(Exit.succeed(n))
      return { cancel: () => void cancelled++ }
    }
    const out = yield* Stream.runCollect(Stream.take(orderedConcurrently(Stream.range(1, 1_000), work, 4), 5))
    expect(Chunk.toReadonlyArray(out)).toEqual([1, 2, 3, 4, 5])
    // Four lanes' worth were left running: each is cancelled once.
    expect(started - 8).toBe(4)
    expect(cancelled).toBe(4)
  }))

it.live("runs `concurrency` elements at once, even from one-element chunks", () =>
  Effect.gen(function*() {
    const concurrency = 6
    let running = 0
    const all = yield* Deferred.make<void>()
    // Each element waits until `concurrency` are running: fewer lanes would never finish.
    const work = (n: number) =>
      Effect.gen(function*() {
        if (++running === concurrency) yield* Deferred.succeed(all, undefined)
        yield* Deferred.await(all)
        return n
      })
    const input = Stream.range(1, 20).pipe(Stream.rechunk(1))
    const out = yield* Stream.runCollect(orderedConcurrently(input, work, concurrency)).pipe(
      Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`only ${running} ran at once`) })
    )
    expect(Chunk.toReadonlyArray(out)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1))
  }))

it.live("a defect in one element fails the stream, and the work still running is interrupted", () =>
  Effect.gen(function*() {
    const interrupted: Array<number> = []
    const work = (n: number) =>
      n === 3
        ? Effect.dieMessage("boom")
        : n < 3
        ? Effect.succeed(n)
        : Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => interrupted.push(n))))
    const exit = yield* Effect.exit(Stream.runCollect(orderedConcurrently(Stream.range(1, 6), work, 4)))
    expect(Exit.isFailure(exit) && Exit.causeOption(exit).pipe((c) => c._tag === "Some" && String(c.value).includes("boom"))).toBe(true)
    expect(interrupted.length).toBeGreaterThan(0)
  }))

it.live("stopping early interrupts the lanes: nothing keeps running after the stream ends", () =>
  Effect.gen(function*() {
    let started = 0
    const work = (n: number) => Effect.as(Effect.sync(() => started++), n)
    const out = yield* Stream.runCollect(Stream.take(orderedConcurrently(Stream.range(1, 1_000), work, 4), 5))
    expect(Chunk.toReadonlyArray(out)).toEqual([1, 2, 3, 4, 5])
    // Read ahead is bounded: concurrency plus a piece, a few pieces in the buffer, not the whole input.
    expect(started).toBeLessThan(100)
  }))
