/**
 * Vitest global setup: compiles src → dist once, so the end-to-end CLI tests spawn the current
 * code (`dist/bin.js …`), also when vitest runs without `npm test`'s `pretest`.
 */
import { execFileSync } from "node:child_process"
import { chmodSync } from "node:fs"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

export const setup = (): void => {
  // Each vitest project runs its own global setup, in this one process: build once.
  if (process.env["SIGNAL_MAILJET_DIST_BUILT"] === "1") return
  const root = fileURLToPath(new URL("..", import.meta.url))
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit", timeout: 120_000 })
  // Run as a user runs it: through its first line, which sets the heap's bounds.
  chmodSync(`${root}dist/bin.js`, 0o755)
  process.env["SIGNAL_MAILJET_DIST_BUILT"] = "1"
}
