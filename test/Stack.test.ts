/**
 * Composition in one module: every delivery stack (deliver, replay, serve, `Delivery.live`, the demo
 * and the tests) comes from src/Delivery/Stack.ts, so none of them can leave out what another one
 * reads (the issue behind it: `Delivery.live()` read no suppressions, and re-subscribed).
 */
import { readdirSync, readFileSync } from "node:fs"
import { expect, it } from "vitest"
import { ROOT } from "./support/bin.js"

/**
 * What composing a delivery stack by hand looks like: the engine's layer piped or provided into, or
 * what preflight provides made. (Building one service alone for its own test, a `DeliveryConfig` or
 * a `Mapping`, is not a stack.)
 */
const COMPOSING = [
  "Delivery.layer.pipe(",
  "Layer.provide(Delivery.layer",
  "Layer.provideMerge(Delivery.layer",
  "Preflight.layer(",
  "Suppressions.layerEmpty"
]

const sources = (dir: string) =>
  readdirSync(`${ROOT}/${dir}`, { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts") && f !== "Stack.test.ts")
    .map((f) => `${dir}/${f}`)

it("only src/Delivery/Stack.ts composes delivery stacks; src, the tests and the scripts call it", () => {
  const composing = [...sources("src"), ...sources("test"), ...sources("scripts")]
    .filter((f) => f !== "src/Delivery/Stack.ts")
    .flatMap((f) => {
      const text = readFileSync(`${ROOT}/${f}`, "utf8")
      return COMPOSING.filter((c) => text.includes(c)).map((c) => `${f}: ${c}`)
    })
  expect(composing).toStrictEqual([])
})
