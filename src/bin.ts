#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=1048576 node --max-semi-space-size=4 --max-old-space-size=128 --initial-heap-size=42
/**
 * The `signal-mailjet` process: runs the CLI and turns its end into an exit code.
 *
 * The heap is bounded on the first line (V8's limits cannot be changed once it runs): left alone,
 * V8 lets the old generation grow to about four times what is live before collecting it, and
 * `deliver` peaked at 235 MB while about 40 MB was live. A smaller young generation and a capped
 * old one keep it near 140 MB for about 10% more CPU (BENCHMARKS.md). Semi-spaces of 4 MB rather
 * than 8 took a bulk backfill's peak from 149 to 137 MB once a window no longer lived long
 * enough to be promoted; the per-event CLI's CPU an event moved within the bench's noise.
 *
 * The heap starts at 42 MB, its old generation at about 41, which V8 keeps as the lowest limit
 * it ever sets: with about 20 MB live, its limit otherwise stays a fraction above what is live,
 * and a bulk backfill ran a full collection every few megabytes promoted. The floor took 14 to
 * 19% off its CPU an event at 0 s jobs and 3 to 4% at 30 and 60 s, for 6 to 12 MB more at the
 * peak (BENCHMARKS.md, "Issue 28, bulk: the old generation's floor set"). `--initial-heap-size`,
 * not `--initial-old-space-size`, to keep within 127 characters; `--max-heap-size` would be
 * shorter than `--max-old-space-size`, but V8 aborts when NODE_OPTIONS also bounds the old
 * generation (`--max-old-space-size`, common in containers) beside the semi-spaces given here.
 *
 * glibc's malloc is told to map buffers of 1 MB and more on their own: by default, once one is
 * freed it serves later ones from its heap, where buffers that live longer between them keep it
 * from shrinking. A bulk backfill (megabyte buffers for each window) peaked 17 MB higher without
 * it, for no measured CPU. Other C libraries ignore the variable.
 *
 * V8's allocation-site pretenuring is turned off (below, not on the first line: a kernel before
 * Linux 5.1 cuts that line at 127 characters). At start the first events wait up to a second for
 * a backlog to show, so V8 saw nearly every object of some allocation sites survive and, in most
 * runs, allocated those sites' objects in the old generation from then on, though later they
 * die young: a bulk backfill of 200,000 events promoted 380 MB instead of 270, with 15% more
 * mark-compacts and 20% more allocated (BENCHMARKS.md, "Issue 28, bulk: a gathering of our own").
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { run } from "./Cli/Cli.js"
import { loggerLayer } from "./Cli/Options.js"
import { Shutdown } from "./Run/Shutdown.js"
import { exitFlushed } from "./Run/Stdout.js"
import * as V8 from "node:v8"

V8.setFlagsFromString("--no-allocation-site-pretenuring")

// Logs go to stderr for every command (stdout is for outcome lines and answers); a command's
// --log-format replaces this for its own run. What the CLI needs of the platform, not NodeContext:
// its command executor and worker manager, never used, cost about 30 ms of start-up to load.
const main = run(process.argv).pipe(
  Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer, Shutdown.layerSignals(() => exitFlushed(130, 2_000)), loggerLayer("text")))
)

const fiber = Effect.runFork(main)
// Every end waits for stdout to take what was written: the outcome lines are the run's record.
fiber.addObserver((exit) => {
  if (Exit.isSuccess(exit)) return exitFlushed(0)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) {
    const e = failure.value
    if (typeof e === "object" && e !== null && "_tag" in e && e._tag === "ExitCode") {
      return exitFlushed((e as unknown as { readonly code: number }).code)
    }
    // @effect/cli has printed usage errors already.
    return exitFlushed(2)
  }
  process.stderr.write(`signal-mailjet: internal error, please report it:\n${Cause.pretty(exit.cause)}\n`)
  exitFlushed(2)
})
