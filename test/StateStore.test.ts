/** The CLI's state directory: keyed records with times, replaced atomically; tombstones kept in it, by retention. */
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Option } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { Tombstones } from "../src/Domain/Tombstones.js"
import { StateStore } from "../src/Run/StateStore.js"
import * as TombstoneFile from "../src/Run/TombstoneFile.js"

const dir = () => Fs.mkdtempSync(Path.join(Os.tmpdir(), "signal-mailjet-state-"))
const DAY = 86_400_000

const withConfig = (vars: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(vars))))

describe("StateStore", () => {
  it.effect("the directory: MAILJET_STATE_DIR, else XDG_STATE_HOME/signal-mailjet, else ~/.local/state/signal-mailjet, else none", () =>
    Effect.gen(function*() {
      const dirOf = (vars: Record<string, string>) => Effect.map(StateStore, (s) => s.dir).pipe(Effect.provide(StateStore.layer), withConfig(vars))
      expect(yield* dirOf({ MAILJET_STATE_DIR: "/s", XDG_STATE_HOME: "/x", HOME: "/h" })).toEqual(Option.some("/s"))
      expect(yield* dirOf({ XDG_STATE_HOME: "/x", HOME: "/h" })).toEqual(Option.some("/x/signal-mailjet"))
      expect(yield* dirOf({ HOME: "/h" })).toEqual(Option.some("/h/.local/state/signal-mailjet"))
      expect(yield* dirOf({})).toEqual(Option.none())
    }))

  it.effect("records are written whole (temp + rename, nothing left beside), read back, and nothing is created before a write", () =>
    Effect.gen(function*() {
      const d = Path.join(dir(), "nested")
      const store = StateStore.make(Option.some(d))
      expect(yield* store.read("tombstones")).toEqual([])
      expect(Fs.existsSync(d)).toBe(false)
      yield* store.write("tombstones", [{ key: "k1", at: 1_000 }, { key: "k2", at: 2_000 }])
      yield* store.write("tombstones", [{ key: "k3", at: 3_000 }])
      expect(yield* store.read("tombstones")).toEqual([{ key: "k3", at: 3_000 }])
      expect(Fs.readdirSync(d)).toEqual(["tombstones.json"])
      expect(Fs.statSync(Path.join(d, "tombstones.json")).mode & 0o777).toBe(0o600)
      // The key: made once, kept, the same for a second store of the directory.
      const key = store.secret()
      expect(Fs.statSync(Path.join(d, "secret.key")).mode & 0o777).toBe(0o600)
      expect(StateStore.make(Option.some(d)).secret()).toEqual(key)
    }))

  it.effect("a file that is not a state file is refused with a message naming the fix, not read as empty", () =>
    Effect.gen(function*() {
      const d = dir()
      Fs.writeFileSync(Path.join(d, "tombstones.json"), "[1,2]")
      const e = yield* Effect.flip(StateStore.make(Option.some(d)).read("tombstones"))
      expect(e.message).toContain("MAILJET_STATE_DIR")
    }))
})

describe("TombstoneFile", () => {
  const open = (d: string, vars: Record<string, string> = {}) =>
    // Built in the caller's scope: its close is the run's end.
    Layer.build(TombstoneFile.layer.pipe(Layer.provide(Layer.succeed(StateStore, StateStore.make(Option.some(d)))))).pipe(
      Effect.map(Context.get(Tombstones)),
      withConfig(vars)
    )

  // Live: retention is measured from the real clock.
  it.live("an erasure is kept for the next run by its keyed hash, never the address; two runs' erasures are merged; past retention they are gone", () =>
    Effect.gen(function*() {
      const d = dir()
      const now = Date.now()
      // Two runs side by side, each with an erasure: each write merges what the other wrote.
      yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* open(d)
        yield* Effect.scoped(Effect.gen(function*() {
          const b = yield* open(d)
          b.record("old@example.com", { at: now - 10 * DAY })
        }))
        a.record("jane@example.com", { at: now - DAY })
      }))
      const text = Fs.readFileSync(Path.join(d, "tombstones.json"), "utf8")
      expect(text).not.toContain("@")
      expect(text).not.toContain("jane")
      yield* Effect.scoped(Effect.gen(function*() {
        const later = yield* open(d)
        expect(later.erasedAt("jane@example.com")).toBe(now - DAY)
        expect(later.erasedAt("old@example.com")).toBe(now - 10 * DAY)
        expect(later.erasedAt("someone@example.com")).toBeUndefined()
      }))
      yield* Effect.scoped(Effect.gen(function*() {
        const short = yield* open(d, { MAILJET_TOMBSTONE_RETENTION: "5 days" })
        expect(short.erasedAt("old@example.com")).toBeUndefined()
        expect(short.erasedAt("jane@example.com")).toBe(now - DAY)
      }))
    }))

  it.live("an erasure's unsubscribe is kept with it, and a lift (explicit Subscribed) outlives a run that still had the unsubscribe", () =>
    Effect.gen(function*() {
      const d = dir()
      const at = Date.now() - DAY
      yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* open(d)
        a.record("ann@example.com", { at, unsub: true })
        a.record("bob@example.com", { at, unsub: true })
      }))
      const text = Fs.readFileSync(Path.join(d, "tombstones.json"), "utf8")
      expect(text).not.toContain("ann")
      // Two runs side by side: one lifts bob's unsubscribe, the other still holds it; the lift wins.
      yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* open(d)
        yield* Effect.scoped(Effect.gen(function*() {
          const b = yield* open(d)
          b.lift("bob@example.com")
        }))
        a.record("cy@example.com", { at })
      }))
      yield* Effect.scoped(Effect.gen(function*() {
        const later = yield* open(d)
        expect(later.get("ann@example.com")).toEqual({ at, unsub: true })
        expect(later.get("bob@example.com")).toEqual({ at })
        expect(later.get("cy@example.com")).toEqual({ at })
      }))
    }))

  it.effect("the same address under another state directory's key is another hash", () =>
    Effect.gen(function*() {
      const [a, b] = [dir(), dir()]
      const keys = yield* Effect.scoped(Effect.all([open(a), open(b)]).pipe(Effect.map(([x, y]) => [x.key("jane@example.com"), y.key("jane@example.com")])))
      expect(keys[0]).not.toBe(keys[1])
    }))
})
