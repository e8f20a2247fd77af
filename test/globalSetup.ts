/**
 * Vitest global setup: builds dist once with the package's own `build` script (the library by tsc,
 * the CLI bundled into dist/bin.js), so the end-to-end CLI tests spawn the current code
 * (`dist/bin.js …`), also when vitest runs without `npm test`'s `pretest`.
 */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

export const setup = (): void => {
  // Each vitest project runs its own global setup, in this one process: build once.
  if (process.env["SIGNAL_MAILJET_DIST_BUILT"] === "1") return
  const root = fileURLToPath(new URL("..", import.meta.url))
  execFileSync("npm", ["run", "build"], { cwd: root, stdio: "inherit", timeout: 120_000 })
  process.env["SIGNAL_MAILJET_DIST_BUILT"] = "1"
}
