/**
 * stdout as the record of a run. On Linux a pipe is written asynchronously: a write that the
 * reader has not taken yet waits in the process, and `process.exit` drops it (100,000 outcome
 * lines piped into a slow reader, 20,000 lost behind a summary that counted them all). So a
 * write waits while the pipe is full, and every exit waits for what was written to leave.
 */
import * as Effect from "effect/Effect"

/** Writes `text` (or its UTF-8); returns once the stream takes more (at once unless the pipe is full), or is gone. */
export const write = (text: string | Uint8Array): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const out = process.stdout
    if (out.write(text) || out.destroyed) return resume(Effect.void)
    const done = () => {
      off()
      resume(Effect.void)
    }
    const off = () => {
      out.off("drain", done)
      out.off("close", done)
      out.off("error", done)
    }
    out.once("drain", done)
    out.once("close", done)
    out.once("error", done)
    return Effect.sync(off)
  })

/** Resolves once stdout and stderr hold nothing unwritten (or are gone), or after `ms` at most. */
export const flushed = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    timer.unref()
    const streams = [process.stdout, process.stderr]
    let left = streams.length
    const one = () => {
      if (--left === 0) {
        clearTimeout(timer)
        resolve()
      }
    }
    // A write's callback runs once the writes before it have left.
    for (const s of streams) s.writableLength === 0 || s.destroyed ? one() : s.write("", one)
  })

/** Flushes, then exits: every way out of the process goes through here. */
export const exitFlushed = (code: number, ms = 60_000): void => {
  void flushed(ms).then(() => process.exit(code))
}
