/** Stream plumbing for delivery's hot path. */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"

/**
 * Elements handed to lanes together, at least; see `orderedConcurrently`. A piece as large as the
 * lanes are many: every stage of the stream costs per piece, and at 32 lanes pieces of 8 took a fifth
 * to a quarter more CPU an event in process (BENCHMARKS.md).
 */
const PIECE = 8

/** Passes chunks on, cutting those longer than `size` into pieces of at most `size`. */
const splitChunks = <A, E>(size: number) => {
  const loop: Channel.Channel<Chunk.Chunk<A>, Chunk.Chunk<A>, E, E, unknown, unknown> = Channel.readWith({
    onInput: (chunk: Chunk.Chunk<A>) => {
      if (chunk.length <= size) return Channel.zipRight(Channel.write(chunk), loop)
      const pieces: Array<Chunk.Chunk<A>> = []
      for (let i = 0; i < chunk.length; i += size) {
        pieces.push(Chunk.unsafeFromArray(Chunk.toReadonlyArray(chunk).slice(i, i + size)))
      }
      return Channel.zipRight(Channel.writeAll(...pieces), loop)
    },
    onFailure: (e: E) => Channel.fail(e),
    onDone: () => Channel.void
  })
  return loop
}

/** An element started without a fiber (see `orderedConcurrently`): `cancel` ends it unanswered. */
export interface Started {
  readonly cancel: () => void
}

/** An element, and what became of it. */
interface Job<A, B, R> {
  readonly input: A
  exit: Exit.Exit<B> | undefined
  waiter: ((exit: Exit.Exit<B>) => void) | undefined
  /** What a lane is to run for it (its Effect, or the rest of a start). */
  run: Effect.Effect<B, never, R> | undefined
  /** Set while it is started without a fiber, or its rest waits for a lane. */
  cancel: (() => void) | undefined
  readonly piece: Piece<Job<A, B, R>>
}

/** The elements of one chunk, passed on together: awaited as one (one wait a piece, not one an element). */
interface Piece<J> {
  readonly jobs: Array<J>
  /** Elements not done yet; 0 or less once one failed (the stream fails then, see `results`). */
  left: number
  /** Called when the last is done, or one failed. */
  waiter: (() => void) | undefined
}

/**
 * `Stream.mapEffect(f, { concurrency })`, ordered, for less: that operator costs about 65 µs of CPU
 * per element (measured), and a fiber forked per element about 20 µs more than this. At most
 * `concurrency` elements run at once, in input order of start; `f` returns an element's Effect,
 * run by one of `concurrency` lanes (fibers made once), or starts it in plain code (`Started`) and
 * calls `done` once with its result (an Exit) or an Effect a lane runs to make it: the usual event
 * then takes no fiber step at all. Results are awaited in input order. Chunks go through whole (a
 * sink writes a chunk at a time), cut to pieces of at most `concurrency` elements (`PIECE` at least) so
 * that how far it reads ahead (`concurrency` elements and a piece) does not depend on how the input is
 * chunked, and the next piece is taken while a piece's last elements run. When the stream ends early
 * (an upstream failure, an interruption) what is still running is interrupted or cancelled.
 */
export const orderedConcurrently = <A, B, E, R, R2>(
  self: Stream.Stream<A, E, R>,
  f: (a: A, done: (b: Effect.Effect<B, never, R2>) => void) => Effect.Effect<B, never, R2> | Started,
  concurrency: number
): Stream.Stream<B, E, R | R2> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    // Elements read and not yet passed on (at least a piece, so a piece can always be taken whole).
    const pieceSize = Math.max(PIECE, concurrency)
    const window = yield* Effect.makeSemaphore(concurrency + pieceSize)
    type J = Job<A, B, R2>
    // Elements not started yet, in input order; Effects waiting for a lane; lanes waiting for one.
    const queue: Array<J> = []
    let head = 0
    const ready: Array<J> = []
    const idle: Array<(job: Effect.Effect<J>) => void> = []
    const started = new Set<J>()
    let running = 0
    let closed = false
    const toLane = (job: J, run: Effect.Effect<B, never, R2>) => {
      job.run = run
      const lane = idle.pop()
      if (lane !== undefined) lane(Effect.succeed(job))
      else ready.push(job)
    }
    const complete = (job: J, exit: Exit.Exit<B>) => {
      job.exit = exit
      job.cancel = undefined
      started.delete(job)
      running--
      job.waiter?.(exit)
      const piece = job.piece
      piece.left = exit._tag === "Failure" ? 0 : piece.left - 1
      const waiter = piece.waiter
      if (piece.left <= 0 && waiter !== undefined) {
        piece.waiter = undefined
        waiter()
      }
    }
    const start = (job: J) => {
      running++
      const r = f(job.input, (b) => {
        if (Exit.isExit(b)) complete(job, b as Exit.Exit<B>)
        else toLane(job, b)
        // From a callback of the element's own I/O: the next start waits for a microtask.
        later()
      })
      if (Effect.isEffect(r)) return toLane(job, r)
      if (job.exit === undefined) {
        job.cancel = r.cancel
        started.add(job)
      }
    }
    const pump = () => {
      while (!closed && running < concurrency && head < queue.length) {
        const job = queue[head]!
        queue[head++] = undefined as never
        if (head === queue.length) {
          queue.length = 0
          head = 0
        }
        start(job)
      }
    }
    let pumping = false
    const pumpLater = () => {
      pumping = false
      pump()
    }
    const later = () => {
      if (pumping || head === queue.length) return
      pumping = true
      queueMicrotask(pumpLater)
    }
    const submit = (chunk: Chunk.Chunk<A>): Piece<J> => {
      const piece: Piece<J> = { jobs: [], left: chunk.length, waiter: undefined }
      for (const input of chunk) {
        const job: J = { input, exit: undefined, waiter: undefined, run: undefined, cancel: undefined, piece }
        piece.jobs.push(job)
        queue.push(job)
      }
      pump()
      return piece
    }
    // One match per element, where `Effect.exit` and a map made two steps and a closure more.
    const done = (job: J, exit: Exit.Exit<B>) => {
      complete(job, exit)
      pump()
      return Effect.void
    }
    const run = (job: J) => {
      const effect = job.run!
      job.run = undefined
      job.cancel = undefined
      started.delete(job)
      if (closed) return Effect.void
      return Effect.matchCauseEffect(effect, {
        onFailure: (cause) => done(job, Exit.failCause(cause)),
        onSuccess: (b) => done(job, Exit.succeed(b))
      })
    }
    // An idle lane waits here; `toLane` resumes it with its job.
    const idleRun = Effect.flatMap(
      Effect.async<J>((resume) => {
        idle.push(resume)
        return Effect.sync(() => {
          const i = idle.indexOf(resume)
          if (i >= 0) idle.splice(i, 1)
        })
      }),
      run
    )
    const step = Effect.suspend(() => (ready.length > 0 ? run(ready.shift()!) : idleRun))
    // `whileLoop`, not `Effect.forever`, which yields to the scheduler after every element: a
    // round trip per event. The runtime still yields a fiber that runs long without waiting.
    const lane = Effect.whileLoop({ while: () => true, body: () => step, step: () => {} })
    for (let i = 0; i < concurrency; i++) yield* Effect.forkScoped(lane)
    // Runs before the lanes are interrupted (finalizers run last first): what was started without
    // a fiber, or waits for a lane, is cancelled, and nothing starts after.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closed = true
        for (const job of started) job.cancel?.()
        started.clear()
      })
    )
    const result = (job: J): Effect.Effect<B> =>
      job.exit !== undefined
        ? job.exit
        : Effect.async<B>((resume) => {
          // An Exit is an effect: the result resumes the waiting side as it is.
          job.waiter = resume
          return Effect.sync(() => {
            job.waiter = undefined
          })
        })
    // In input order: the first failure, else every result (awaited one by one only after a failure).
    const results = (piece: Piece<J>): Effect.Effect<Chunk.Chunk<B>> => {
      const jobs = piece.jobs
      const out: Array<B> = new Array(jobs.length)
      for (let i = 0; i < jobs.length; i++) {
        const exit = jobs[i]!.exit
        if (exit === undefined || exit._tag === "Failure") {
          return Effect.map(Effect.zipLeft(Effect.forEach(jobs, result), window.release(jobs.length)), Chunk.unsafeFromArray)
        }
        out[i] = exit.value
      }
      return Effect.as(window.release(jobs.length), Chunk.unsafeFromArray(out))
    }
    const pieceDone = (piece: Piece<J>): Effect.Effect<Chunk.Chunk<B>> =>
      piece.left <= 0 ? results(piece) : Effect.flatMap(
        Effect.async<void>((resume) => {
          piece.waiter = () => resume(Effect.void)
          return Effect.sync(() => {
            piece.waiter = undefined
          })
        }),
        () => results(piece)
      )
    return self.pipe(
      Stream.pipeThroughChannel(splitChunks<A, E>(pieceSize)),
      Stream.mapChunksEffect((chunk) => Effect.as(window.take(chunk.length), Chunk.of(submit(chunk)))),
      // As many pieces as there may be lanes busy, so one-element chunks (Kafka) still keep every lane busy.
      Stream.bufferChunks({ capacity: concurrency }),
      Stream.mapEffect(pieceDone),
      Stream.flattenChunks
    )
  }))
