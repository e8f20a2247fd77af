import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Schema } from "effect"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Mapped } from "../src/Mapping.js"
import { DropReason, mapEvent, Mapping } from "../src/Mapping.js"
import type { Preset } from "../src/Preset/Preset.js"
import { canonicalEventName, DefaultPreset, loadPreset, parsePreset, PresetInvalid } from "../src/Preset/Preset.js"
import { SignalEvent } from "../src/Domain/SignalEvent.js"
import { asciiCanonical, MAPPED_EVENTS, Spelling } from "./arbitraries.js"

const decode = Schema.decodeUnknownSync(SignalEvent)

const parse = (file: unknown): Either.Either<Preset, PresetInvalid> =>
  parsePreset(typeof file === "string" ? file : JSON.stringify(file), "preset.json")

const valid = (file: unknown): Preset => {
  const p = parse(file)
  if (Either.isLeft(p)) throw new Error(`expected a valid preset, got: ${p.left.message}`)
  return p.right
}

const invalid = (file: unknown): PresetInvalid => {
  const p = parse(file)
  if (Either.isRight(p)) throw new Error("expected PresetInvalid, the preset was accepted")
  expect(p.left).toBeInstanceOf(PresetInvalid)
  expect(p.left._tag).toBe("PresetInvalid")
  expect(p.left.source).toBe("preset.json")
  expect(p.left.message).toContain("Invalid preset preset.json")
  return p.left
}

const mapWith = (preset: Preset, raw: unknown, consent: "Granted" | "Withdrawn" | "Unknown" = "Unknown"): Mapped =>
  mapEvent(preset, decode(raw), consent)

const upsertOf = (m: Mapped) => {
  if (m._tag !== "Upsert") throw new Error(`expected an upsert, got ${m._tag === "Dropped" ? `Dropped: ${m.reason}` : "Erase"}`)
  return m.upsert
}

// Issue 27 added the deletion request to the Default table (README): a sixth event, which erases.
const DEFAULT_KEYS = ["signedup", "identified", "ordercompleted", "subscribed", "unsubscribed", "deletionrequested"]

describe("canonicalEventName", () => {
  /** Latin letters (accented too), digits and separators of every kind. */
  const Word = Schema.String.annotations({
    arbitrary: () => (fc) =>
      fc.string({
        unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éÉüÜøØçÇñÑ"),
        minLength: 1,
        maxLength: 8
      })
  })
  const Separator = Schema.Literal("", " ", "_", "-", ".", "/", "  ", "\t", "·", "—", "🎉", "'", ":")

  it.prop("is idempotent, on any text", {
    s: Schema.Union(Schema.String, Schema.String.annotations({ arbitrary: () => (fc) => fc.string({ unit: "binary" }) }))
  }, ({ s }) => {
    const once = canonicalEventName(s)
    expect(canonicalEventName(once)).toBe(once)
  }, { fastCheck: { numRuns: 500 } })

  it.prop("keeps only lower-case letters and digits (ASCII text)", { s: Schema.String }, ({ s }) => {
    expect(canonicalEventName(s)).toBe(asciiCanonical(s))
  })

  it.prop(
    "is separator-insensitive",
    { words: Schema.Array(Word).pipe(Schema.minItems(1), Schema.maxItems(4)), seps: Schema.Array(Separator) },
    ({ seps, words }) => {
      const joined = words.map((w, i) => (i === 0 ? "" : seps[i - 1] ?? " ") + w).join("")
      expect(canonicalEventName(joined)).toBe(canonicalEventName(words.join("")))
      expect(canonicalEventName(`${seps[0] ?? ""}${joined}${seps[1] ?? ""}`)).toBe(canonicalEventName(joined))
    }
  )

  it.prop("is case-insensitive", { words: Schema.Array(Word).pipe(Schema.minItems(1)) }, ({ words }) => {
    const s = words.join(" ")
    expect(canonicalEventName(s.toUpperCase())).toBe(canonicalEventName(s))
    expect(canonicalEventName(s.toLowerCase())).toBe(canonicalEventName(s))
  })

  it.prop(
    "every spelling of a mapped event names that event",
    { spellings: Schema.Tuple(...MAPPED_EVENTS.map(Spelling)) },
    ({ spellings }) => {
      spellings.forEach((s, i) => {
        expect(canonicalEventName(s)).toBe(asciiCanonical(MAPPED_EVENTS[i]!))
      })
    }
  )

  it("examples from the doc", () => {
    for (const s of ["Signed Up", "signed_up", "signed-up", "SIGNED UP", "SignedUp", " signed.up! "]) {
      expect(canonicalEventName(s)).toBe("signedup")
    }
    expect(canonicalEventName("Order Completed")).toBe("ordercompleted")
    expect(canonicalEventName("Step 2 Done")).toBe("step2done")
    expect(canonicalEventName("---")).toBe("")
  })
})

describe("the Default preset is the table of the README", () => {
  it("events, actions and properties", () => {
    expect([...DefaultPreset.events.keys()].sort()).toEqual([...DEFAULT_KEYS].sort())
    const rule = (key: string) => DefaultPreset.events.get(key)!
    expect(rule("signedup").action).toBe("consent")
    expect(rule("identified").action).toBe("consent")
    expect(rule("ordercompleted").action).toBe("consent")
    expect(rule("subscribed").action).toBe("addforce")
    expect(rule("unsubscribed").action).toBe("unsub")
    expect(rule("deletionrequested").action).toBe("erase")
    expect(rule("deletionrequested").properties).toEqual([])
    const props = (key: string) => rule(key).properties.map(([p]) => p)
    expect(props("signedup")).toEqual(["first_name", "last_name", "signup_method"])
    expect(props("identified")).toEqual(["first_name", "last_name"])
    expect(props("ordercompleted")).toEqual(["first_name", "last_name", "last_order_value", "last_order_currency"])
    expect(props("subscribed")).toEqual(["first_name", "last_name"])
    expect(props("unsubscribed")).toEqual(["first_name", "last_name"])
    expect(Object.fromEntries(rule("ordercompleted").properties)["last_order_value"]).toEqual([
      "properties.revenue",
      "properties.total",
      "properties.value"
    ])
  })

  it("datatypes", () => {
    expect(Object.fromEntries(DefaultPreset.datatypes)).toStrictEqual({
      first_name: "str",
      last_name: "str",
      signup_method: "str",
      last_order_value: "float",
      last_order_currency: "str"
    })
  })

  it("an empty preset file is the Default preset", () => {
    const p = valid({})
    expect([...p.events.keys()]).toEqual([...DefaultPreset.events.keys()])
    expect([...p.datatypes]).toEqual([...DefaultPreset.datatypes])
  })
})

describe("preset files", () => {
  const productViewed = {
    properties: { last_viewed_product: "str", last_viewed_at: "datetime" },
    events: {
      "Product Viewed": { properties: { last_viewed_product: "properties.name", last_viewed_at: "timestamp" } }
    }
  }

  it("extending the Default preset adds an event and keeps the rest", () => {
    const p = valid(productViewed)
    expect([...p.events.keys()].sort()).toEqual([...DEFAULT_KEYS, "productviewed"].sort())
    expect(p.events.get("productviewed")!.action).toBe("consent")
    expect(p.datatypes.get("last_viewed_product")).toBe("str")
    expect(p.datatypes.get("last_order_value")).toBe("float")
    const viewed = upsertOf(mapWith(p, {
      type: "track",
      event: "product_viewed",
      timestamp: "2026-11-26T10:15:00.000Z",
      properties: { name: "Boots" },
      traits: { email: "a@b.io", first_name: "Ann" }
    }, "Granted"))
    expect(viewed.action).toBe("addforce")
    expect(viewed.properties).toStrictEqual({ last_viewed_product: "Boots", last_viewed_at: "2026-11-26T10:15:00.000Z" })
    // the Default events are untouched
    expect(upsertOf(mapWith(p, { type: "track", event: "Signed Up", traits: { email: "a@b.io" }, properties: { method: "x" } }))
      .properties).toStrictEqual({ signup_method: "x" })
    // and the Default preset itself is not changed by extending it
    expect(DefaultPreset.events.has("productviewed")).toBe(false)
  })

  it("an event of the file replaces the Default event of the same canonical name", () => {
    const p = valid({ events: { "signed-up": { action: "addforce" } } })
    expect(p.events.size).toBe(DEFAULT_KEYS.length)
    const rule = p.events.get("signedup")!
    expect(rule.name).toBe("signed-up")
    expect(rule.properties).toEqual([])
    const upsert = upsertOf(mapWith(p, { type: "track", event: "Signed Up", traits: { email: "a@b.io", first_name: "A" } }))
    expect(upsert.action).toBe("addforce")
    expect(upsert.properties).toStrictEqual({})
  })

  it("extends: \"none\" replaces the Default preset", () => {
    const p = valid({ extends: "none", ...productViewed })
    expect([...p.events.keys()]).toEqual(["productviewed"])
    expect([...p.datatypes.keys()].sort()).toEqual(["last_viewed_at", "last_viewed_product"])
    expect(mapWith(p, { type: "track", event: "Signed Up", traits: { email: "a@b.io" } })).toStrictEqual({
      _tag: "Dropped",
      reason: DropReason.notMapped
    })
  })

  it("an event set to null removes it", () => {
    const p = valid({ events: { subscribed: null, "Order-Completed": null } })
    expect([...p.events.keys()].sort()).toEqual(["deletionrequested", "identified", "signedup", "unsubscribed"])
    const dropped = mapWith(p, { type: "track", event: "Subscribed", traits: { email: "a@b.io" } })
    expect(dropped._tag === "Dropped" && dropped.reason).toContain("event not mapped")
    expect(mapWith(p, { type: "identify", traits: { email: "a@b.io" } })._tag).toBe("Upsert")
  })

  it("a static { \"value\": … } source is written whatever the event holds; false and 0 too", () => {
    const p = valid({
      properties: { source: "str", vip: "bool", score: "int" },
      events: {
        Subscribed: {
          action: "addforce",
          properties: { source: { value: "web" }, vip: { value: false }, score: { value: 0 } }
        }
      }
    })
    const upsert = upsertOf(mapWith(p, { type: "track", event: "subscribed", traits: { email: "a@b.io" } }))
    expect(upsert.properties).toStrictEqual({ source: "web", vip: false, score: 0 })
  })

  it("a list source takes the first path with a value; sources may read ids in either spelling", () => {
    const p = valid({
      properties: { contact_id: "str", visitor: "str" },
      events: {
        Identified: {
          properties: { contact_id: ["traits.crm_id", "userId"], visitor: "anonymousId" }
        }
      }
    })
    const read = (raw: Record<string, unknown>) =>
      upsertOf(mapWith(p, { type: "identify", ...raw, traits: { email: "a@b.io", ...(raw["traits"] as object) } }))
        .properties
    expect(read({ userId: "u-1", anonymousId: "v-1", traits: { crm_id: "c-9" } })).toStrictEqual({
      contact_id: "c-9",
      visitor: "v-1"
    })
    expect(read({ userId: "u-1", traits: { crm_id: "" } })).toStrictEqual({ contact_id: "u-1" })
    expect(read({ user_id: "u-2", anonymous_id: "v-2" })).toStrictEqual({ contact_id: "u-2", visitor: "v-2" })
    expect(read({ userId: null, user_id: "u-3" })).toStrictEqual({ contact_id: "u-3" })
  })

  it("a source path reads only the event's own fields", () => {
    const p = valid({ properties: { c: "str" }, events: { Identified: { properties: { c: "traits.constructor" } } } })
    expect(upsertOf(mapWith(p, { type: "identify", traits: { email: "a@b.io" } })).properties).toStrictEqual({})
  })
})

describe("invalid presets give PresetInvalid naming the problem", () => {
  it("bad JSON", () => {
    expect(invalid("{ \"events\": ").message).toContain("not JSON")
    expect(invalid("").message).toContain("not JSON")
  })

  it("not an object", () => {
    invalid("[]")
    invalid("null")
    invalid("\"default\"")
  })

  it("an unknown key, at the top or in an event", () => {
    expect(invalid({ evnts: {} }).message).toContain("evnts")
    expect(invalid({ events: { Subscribed: { propertes: {} } } }).message).toContain("propertes")
    expect(invalid({ properties: { x: "str" }, events: { Subscribed: { properties: { x: { value: 1, extra: 2 } } } } }))
      .toBeInstanceOf(PresetInvalid)
  })

  it("a bad extends, datatype or action", () => {
    expect(invalid({ extends: "base" }).message).toContain("base")
    expect(invalid({ properties: { age: "integer" } }).message).toContain("integer")
    expect(invalid({ events: { Subscribed: { action: "subscribe" } } }).message).toContain("subscribe")
  })

  it("a property whose datatype is not declared", () => {
    const e = invalid({ events: { "Product Viewed": { properties: { last_product: "properties.name" } } } })
    expect(e.problem).toContain("\"last_product\"")
    expect(e.problem).toContain("Product Viewed")
    expect(e.problem).toContain("not declared")
    // declared in the file it extends: fine
    valid({ events: { "Product Viewed": { properties: { first_name: "traits.first_name" } } } })
    // not when the Default preset is not extended
    expect(invalid({ extends: "none", events: { "Product Viewed": { properties: { first_name: "traits.first_name" } } } })
      .problem).toContain("\"first_name\"")
  })

  it("a bad source path", () => {
    const withSource = (source: unknown) =>
      ({ properties: { p: "str" }, events: { Subscribed: { properties: { p: source } } } })
    for (const bad of ["property.method", "context.consent.marketing", "traits..name", "", "traits.", ".traits"]) {
      const e = invalid(withSource(bad))
      expect(e.problem).toContain(`"${bad}"`)
      expect(e.problem).toContain("must start with one of")
    }
    expect(invalid(withSource(["properties.total", "totals.value"])).problem).toContain("\"totals.value\"")
    expect(invalid(withSource([])).message).toContain("Subscribed")
    for (const good of ["traits", "traits.a.b", "properties.a", "context.traits.email", "userId", "timestamp", "name"]) {
      valid(withSource(good))
    }
  })

  it("two names that canonicalise to the same event", () => {
    const e = invalid({ events: { "Signed Up": { action: "addforce" }, signed_up: null } })
    expect(e.problem).toContain("\"Signed Up\"")
    expect(e.problem).toContain("\"signed_up\"")
    expect(e.problem).toContain("same event")
  })

  it("an event name without letters or digits", () => {
    expect(invalid({ events: { "--": { action: "addforce" } } }).problem).toContain("\"--\"")
  })

  it("an empty property name", () => {
    expect(invalid({ properties: { " ": "str" } }).problem).toContain("empty")
  })

  it("a static value that its property's datatype cannot hold", () => {
    const e = invalid({
      properties: { score: "float" },
      events: { Subscribed: { properties: { score: { value: "high" } } } }
    })
    expect(e.problem).toContain("\"score\"")
    expect(e.problem).toContain("expects float")
    valid({ properties: { score: "float" }, events: { Subscribed: { properties: { score: { value: "1.5" } } } } })
  })

  it.prop(
    "any two spellings of one event in a file clash",
    { a: Spelling("Order Completed"), b: Spelling("Order Completed") },
    ({ a, b }) => {
      if (a === b) return
      const e = invalid(`{"events":{${JSON.stringify(a)}:null,${JSON.stringify(b)}:{"action":"unsub"}}}`)
      expect(e.problem).toContain(`"${a}"`)
      expect(e.problem).toContain(`"${b}"`)
    }
  )
})

describe("deletion requests", () => {
  it("the Default preset erases on track `Deletion Requested` and on Segment-style `type: \"delete\"`", () => {
    expect(mapWith(DefaultPreset, { type: "track", event: "Deletion Requested", traits: { email: " Jane@Example.com" } }))
      .toStrictEqual({ _tag: "Erase", email: "jane@example.com" })
    expect(mapWith(DefaultPreset, { type: "delete", userId: "u1", context: { traits: { email: "jo@example.com" } } }))
      .toStrictEqual({ _tag: "Erase", email: "jo@example.com" })
    // An erasure needs the address like any event.
    expect(mapWith(DefaultPreset, { type: "delete", userId: "u1" })).toStrictEqual({ _tag: "Dropped", reason: DropReason.noEmail })
  })

  it("any event of a preset may erase; a deletion request set to null is not mapped", () => {
    const p = valid({ events: { "Account Closed": { action: "erase" }, "Deletion Requested": null } })
    expect(mapWith(p, { type: "track", event: "account_closed", traits: { email: "a@b.io" } })).toStrictEqual({ _tag: "Erase", email: "a@b.io" })
    expect(mapWith(p, { type: "delete", traits: { email: "a@b.io" } })).toStrictEqual({ _tag: "Dropped", reason: DropReason.notMapped })
  })

  it("an erasing event writes no properties: the preset says so", () => {
    const e = invalid({ properties: { x: "str" }, events: { Gone: { action: "erase", properties: { x: "traits.x" } } } })
    expect(e.problem).toContain("erases the contact, so it writes no properties")
  })
})

describe("loading preset files", () => {
  const dir = mkdtempSync(join(tmpdir(), "signal-mailjet-preset-"))
  const file = (name: string, text: string) => {
    const path = join(dir, name)
    writeFileSync(path, text)
    return path
  }

  it.effect("loadPreset reads and compiles a file", () =>
    Effect.gen(function*() {
      const path = file("ok.json", JSON.stringify({ events: { Subscribed: null } }))
      const p = yield* loadPreset(path)
      expect(p.events.has("subscribed")).toBe(false)
      expect(p.events.size).toBe(DEFAULT_KEYS.length - 1)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("a missing file is PresetInvalid naming the path", () =>
    Effect.gen(function*() {
      const path = join(dir, "missing.json")
      const e = yield* Effect.flip(loadPreset(path))
      expect(e._tag).toBe("PresetInvalid")
      expect(e.source).toBe(path)
      expect(e.message).toContain(path)
      expect(e.problem).toContain("cannot be read")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("an invalid file is PresetInvalid naming the path", () =>
    Effect.gen(function*() {
      const path = file("bad.json", "{\"events\": {\"A\": {\"properties\": {\"undeclared\": \"properties.x\"}}}}")
      const e = yield* Effect.flip(loadPreset(path))
      expect(e.message).toContain(path)
      expect(e.problem).toContain("\"undeclared\"")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("Mapping.layer uses the preset file it is given", () =>
    Effect.gen(function*() {
      const path = file("mapping.json", JSON.stringify({ extends: "none", events: { Subscribed: { action: "addforce" } } }))
      const mapping = yield* Mapping.pipe(Effect.provide(Mapping.layer(Option.some(path))))
      expect([...mapping.preset.events.keys()]).toEqual(["subscribed"])
      const m = mapping.map(decode({ type: "identify", traits: { email: "a@b.io" } }), "Granted")
      expect(m).toStrictEqual({ _tag: "Dropped", reason: DropReason.notMapped })
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
