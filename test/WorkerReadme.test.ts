/**
 * The README's `serve` walk-through ("From zero, on one machine"), run as written by `sh` against
 * the broker `scripts/kafka` runs for this repository: the block's own `scripts/kafka start` finds
 * it running. Ports 3030 and 8080, as the README has them.
 */
import { expect, it } from "vitest"
import { blockAfter, shell } from "./support/readme.js"

it("the serve walk-through: simulator, topic, produce, serve, its metrics", async () => {
  const block = blockAfter("From zero, on one machine")
  expect(block).toContain("npx signal-mailjet serve &")
  const r = await shell(block, 120_000)
  // Every command of it succeeds, the last one (the dead letters, none yet) included.
  expect(r.code, r.stderr).toBe(0)
  // The examples are delivered by the worker, as its metrics count them.
  expect(r.stdout, r.stderr).toMatch(/^signal_mailjet_events_total\{outcome="delivered",[^}]*\} [1-9]/m)
  expect(r.stdout).toContain("Mailjet simulator listening on http://127.0.0.1:3030")
  expect(r.stderr).not.toMatch(/stopped:/)
}, 150_000)
