/**
 * Vitest global setup: builds dist once (the library by tsc, the CLI bundled into dist/bin.js), so
 * the end-to-end CLI tests spawn the current code (`dist/bin.js …`), also when vitest runs without
 * `npm test`'s `pretest`.
 */
import { execFileSync } from "node:child_process"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"

export const setup = (): void => {
  // Each vitest project runs its own global setup, in this one process: build once.
  if (process.env["SIGNAL_MAILJET_DIST_BUILT"] === "1") return
  const root = fileURLToPath(new URL("..", import.meta.url))
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit", timeout: 120_000 })
  execFileSync(process.execPath, ["scripts/bundle.mjs"], { cwd: root, stdio: "inherit", timeout: 120_000 })
  process.env["SIGNAL_MAILJET_DIST_BUILT"] = "1"
}
