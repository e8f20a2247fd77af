/**
 * The README's commands, taken from the README itself and run as written by `sh` in the
 * repository (where `npx signal-mailjet` is this package's own bin; offline, so npx can never
 * fetch anything). Which blocks run where: the local try-out here; the install line and the
 * embedding example in Package.test.ts; `npm ci` and `npm test` in .ci/run; `npm start` (the demo)
 * in Cli.test.ts; `scripts/kafka topic|produce|consume` in KafkaTools.test.ts; the `serve` walk-through
 * in WorkerReadme.test.ts (it needs the broker).
 */
import { readdirSync, readFileSync } from "node:fs"
import { expect, it } from "vitest"
import { ROOT } from "./support/bin.js"
import { blockAfter, shell } from "./support/readme.js"

const tryLocally = async (env: Readonly<Record<string, string>>) => {
  const block = blockAfter("Try it locally with no Mailjet account:")
  expect(block).toContain("npx signal-mailjet simulate --port 3030 --preset-properties &")
  const r = await shell(block, 60_000, env)
  const outcomes = r.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { line: number; outcome: string })
  // One outcome per example event, in order; the examples include events dropped on purpose.
  expect(outcomes.map((o) => o.line), r.stderr).toStrictEqual(Array.from({ length: 12 }, (_, i) => i + 1))
  expect(outcomes.filter((o) => o.outcome === "delivered").length).toBeGreaterThan(0)
  expect(outcomes.filter((o) => o.outcome === "not-attempted" || o.outcome === "dead-lettered")).toStrictEqual([])
  expect(r.stdout).toContain("Mailjet simulator listening on http://127.0.0.1:3030")
  expect(r.stderr).toMatch(/^signal-mailjet: 12 read, \d+ delivered, \d+ dropped, 0 dead-lettered, 0 not attempted in/m)
  expect(r.code).toBe(0)
  return r
}

it("\"Try it locally with no Mailjet account\": the simulator in the background, then deliver of the examples", async () => {
  await tryLocally({})
}, 90_000)

it("\"Try it locally\" works the same with real keys exported (the README's first section), and prints none of them", async () => {
  const real = { MAILJET_API_KEY: "real-apikey-3KD8QW1Z", MAILJET_SECRET_KEY: "real-secret-7TPV2MXA" }
  const r = await tryLocally(real)
  expect(r.stdout + r.stderr).not.toContain(real.MAILJET_API_KEY)
  expect(r.stdout + r.stderr).not.toContain(real.MAILJET_SECRET_KEY)
}, 90_000)

it("the summary and resume lines the README shows are the ones deliver prints", () => {
  const block = blockAfter("**Stop and resume.**", "text")
  const [summary, resume] = block.split("\n")
  expect(summary).toMatch(
    /^signal-mailjet: \d+ read, \d+ delivered, \d+ dropped, \d+ dead-lettered, \d+ not attempted, \d+ unread in [\d.]+ s \(stopped: Shutdown\)$/
  )
  expect(resume).toMatch(/^signal-mailjet: every line before line (\d+) has its outcome; to resume: signal-mailjet deliver --from-line \1 /)
})

it("the Layout table names every file and folder of src/", () => {
  const readme = readFileSync(`${ROOT}/README.md`, "utf8")
  const layout = readme.slice(readme.indexOf("## Layout"), readme.indexOf("\n## ", readme.indexOf("## Layout") + 1))
  const rows = layout.split("\n").filter((l) => l.startsWith("| `"))
  const files = readdirSync(`${ROOT}/src`, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"))
  const unnamed = files.filter((f) => {
    const parts = f.split("/")
    const name = parts.at(-1)!.replace(/\.ts$/, "")
    // A folder's files are named in its row; a file at the top of src/ has its own row.
    const row = parts.length === 1 ? rows.find((r) => r.includes(`\`${name}.ts\``)) : rows.find((r) => r.startsWith(`| \`${parts[0]}/\``))
    return row === undefined || !row.includes(`\`${name}\``) && !row.includes(`\`${name}.ts\``)
  })
  expect(unnamed).toStrictEqual([])
})
