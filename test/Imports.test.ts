/**
 * The dependency direction, read from every src/ file's imports:
 *
 *   Domain ← Mailjet ← delivery (src/Delivery, src/internal) ← Run ← Kafka / Cli ← bin, index
 *
 * Where the files outside those folders sit:
 * - the base (with Domain/): Preset/, Consent, Mapping, Suppressions, the config and schema helpers of
 *   internal/, and Delivery/DeliveryConfig.ts: settings and pure decisions any layer may read;
 * - Simulator/ beside Mailjet/: it is Mailjet's double and imports nothing of ours.
 * A file may import its own layer or a lower one. Above delivery, only its public modules (the ones
 * index.ts exports from, and Fences' types, which `Delivery.jobs` speaks) may be imported by Run/ and
 * Kafka/: the engine's internals can move without touching the worker.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as path from "node:path"

const SRC = path.resolve(import.meta.dirname, "../src")

const BASE = ["Domain/", "Preset/", "Consent.ts", "Mapping.ts", "Suppressions.ts", "internal/config.ts", "internal/safeStringify.ts", "internal/schemaError.ts", "Delivery/DeliveryConfig.ts"]
const LAYERS: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
  ["base", BASE],
  ["Mailjet", ["Mailjet/", "Simulator/"]],
  ["delivery", ["Delivery/", "internal/"]],
  ["Run", ["Run/"]],
  ["Kafka/Cli", ["Kafka/", "Cli/"]],
  ["entry", ["bin.ts", "index.ts"]]
]
/** Delivery's public face: what Run/ and Kafka/ may import of it. */
const DELIVERY_PUBLIC = new Set(["Delivery/Delivery.ts", "Delivery/DeliveryConfig.ts", "Delivery/RunState.ts", "Delivery/Metrics.ts", "Delivery/Fences.ts"])

/** The layer of a file (relative to src/): the first rule that names it, BASE's before the folders'. */
export const layerOf = (file: string): number => {
  for (let i = 0; i < LAYERS.length; i++) {
    if (LAYERS[i]![1].some((p) => p.endsWith("/") ? file.startsWith(p) : file === p)) {
      // A base file inside a later folder (DeliveryConfig) is the base's.
      return BASE.some((p) => p.endsWith("/") ? file.startsWith(p) : file === p) ? 0 : i
    }
  }
  return -1
}

const isDeliveryInternal = (file: string) => layerOf(file) === 2 && !DELIVERY_PUBLIC.has(file)

const files = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name)
    return e.isDirectory() ? files(full) : e.name.endsWith(".ts") ? [path.relative(SRC, full).split(path.sep).join("/")] : []
  })

/** The src/ files a file imports (static, re-exports and dynamic `import()`), relative to src/. */
export const importsOf = (file: string, text: string): Array<string> => {
  const found: Array<string> = []
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)"(\.{1,2}\/[^"]+)"/g)) {
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1]!)).replace(/\.js$/, ".ts")
    found.push(target)
  }
  return found
}

const edges = files(SRC).flatMap((file) => importsOf(file, fs.readFileSync(path.join(SRC, file), "utf8")).map((to) => ({ from: file, to })))

describe("import direction", () => {
  it("every src/ file has a layer, so a new folder is placed on purpose", () => {
    expect(files(SRC).filter((f) => layerOf(f) < 0)).toEqual([])
  })

  it("law: a file imports only its own layer or a lower one (Domain ← Mailjet ← delivery ← Run ← Kafka/Cli)", () => {
    const upward = edges
      .filter(({ from, to }) => layerOf(to) > layerOf(from))
      .map(({ from, to }) => `${from} (${LAYERS[layerOf(from)]![0]}) imports ${to} (${LAYERS[layerOf(to)]![0]})`)
    expect(upward).toEqual([])
  })

  it("Mailjet/, Run/ and Kafka/ reach delivery only through its public modules", () => {
    const inward = edges
      .filter(({ from, to }) => /^(Mailjet|Run|Kafka)\//.test(from) && isDeliveryInternal(to))
      .map(({ from, to }) => `${from} imports ${to}`)
    expect(inward).toEqual([])
  })

  it("no file of the engine's folders (Domain, Mailjet, Delivery, internal) is over 300 lines", () => {
    const long = files(SRC)
      .filter((f) => /^(Domain|Mailjet|Delivery|internal)\//.test(f))
      .map((f) => [f, fs.readFileSync(path.join(SRC, f), "utf8").split("\n").length - 1] as const)
      .filter(([, n]) => n > 300)
    expect(long).toEqual([])
  })

  it("reads every kind of import it must judge", () => {
    expect(importsOf("Kafka/X.ts", `import { a } from "../Delivery/Bulk.js"\nexport * from "./Y.js"\nconst z = import("../internal/engine.js")\nimport "../Run/Side.js"`))
      .toEqual(["Delivery/Bulk.ts", "Kafka/Y.ts", "internal/engine.ts", "Run/Side.ts"])
    expect(isDeliveryInternal("Delivery/Bulk.ts")).toBe(true)
    expect(isDeliveryInternal("Delivery/Delivery.ts")).toBe(false)
    expect(layerOf("Delivery/DeliveryConfig.ts")).toBe(0)
  })
})
