/**
 * An event name's canonical form (Preset `canonicalEventName`) is kept for the names seen. Law: it
 * is always the name lower-cased without what is not a letter or digit, for any names in any
 * order, seen before or not, long or short, however many (the cache is cleared and refilled).
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { canonicalEventName } from "../src/Preset/Preset.js"

const model = (name: string) => name.toLowerCase().replace(/[^\p{L}\p{N}]/gu, "")

const Name = Schema.Union(
  Schema.Literal("Signed Up", "signed_up", "SIGNED-UP", "Order Completed", "", "É é", "İstanbul"),
  Schema.String,
  // Over the length the cache keeps.
  Schema.String.pipe(Schema.minLength(1), Schema.maxLength(3)).pipe(Schema.transform(Schema.String, { decode: (s) => s.repeat(60), encode: (s) => s }))
)

describe("canonicalEventName", () => {
  it.prop(
    "law: a name's canonical form is its lower-cased letters and digits, seen before or not",
    { names: Schema.Array(Name).pipe(Schema.maxItems(60)), many: Schema.Int.pipe(Schema.between(0, 600)) },
    ({ many, names }) => {
      // Enough distinct names to clear the cache, now and then.
      for (let i = 0; i < many; i++) canonicalEventName(`Event ${i}`)
      for (const name of [...names, ...names]) expect(canonicalEventName(name)).toBe(model(name))
    },
    { fastCheck: { numRuns: 100 } }
  )
})
