/**
 * The simulator's memory per contact: N contacts put in through its own request handler (the
 * `managecontact` call `deliver` makes, with the Default preset's properties), then V8's heap and
 * the process's RSS after a full collection, against the same before any contact.
 *
 *   npx tsc -p tsconfig.scripts.json && node --expose-gc dist-scripts/scripts/sim-memory.js [N]
 *
 * N defaults to 200,000. Reported in BENCHMARKS.md ("The simulator's memory").
 */
import { DefaultPreset } from "../src/Preset/Preset.js"
import { makeCore } from "../src/Simulator/Core.js"

const n = Number(process.argv[2] ?? "200000")
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error("run with node --expose-gc")

const measure = () => {
  gc()
  gc()
  const m = process.memoryUsage()
  return { heap: m.heapUsed, rss: m.rss, external: m.external + m.arrayBuffers }
}

const core = makeCore({
  apiKey: "k",
  secretKey: "s",
  lists: [{ id: 1, name: "Bench" }],
  properties: Array.from(DefaultPreset.datatypes, ([name, datatype]) => ({ name, datatype })),
  recordRequests: false
})
const authorization = "Basic " + Buffer.from("k:s").toString("base64")
const before = measure()
const started = performance.now()
for (let i = 0; i < n; i++) {
  const body = JSON.stringify({
    Email: `bench.${i}@bench.example.com`,
    Name: `Jane Doe ${i}`,
    Action: i % 3 === 1 ? "unsub" : "addnoforce",
    Properties: { first_name: "Jane", last_name: `Doe ${i}`, signup_method: "email" }
  })
  const out = core.handle({ method: "POST", url: "/v3/REST/contactslist/1/managecontact", authorization, body, now: Date.now() })
  if (!("status" in out) || out.status !== 201) throw new Error(`contact ${i}: ${JSON.stringify(out).slice(0, 200)}`)
}
const after = measure()
const per = (a: number, b: number) => ((a - b) / n).toFixed(0)
process.stdout.write(
  `${n.toLocaleString("en")} contacts in ${((performance.now() - started) / 1000).toFixed(1)} s: ` +
    `heap ${per(after.heap, before.heap)} B a contact (${(after.heap / 1e6).toFixed(0)} MB used), ` +
    `RSS ${per(after.rss, before.rss)} B a contact (${(after.rss / 1e6).toFixed(0)} MB), ` +
    `outside the heap ${per(after.external, before.external)} B a contact; holds ${core.contacts().length}\n`
)
