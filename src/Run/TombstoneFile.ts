/**
 * The CLI's tombstones (Domain/Tombstones.ts) in the state directory (StateStore): read when the
 * run starts, leaving out those older than MAILJET_TOMBSTONE_RETENTION, and written after each
 * erasure (coalesced: one write at a time, the latest state) and once more when the run ends. A
 * write merges what is on disk first, so two runs side by side keep each other's erasures.
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as Redacted from "effect/Redacted"
import { makeTombstones, randomSecret, type Tombstone, type TombstoneSet, Tombstones } from "../Domain/Tombstones.js"
import { StateStore, StateUnusable, type StoredRecord } from "./StateStore.js"

export const TOMBSTONES = "tombstones"

/**
 * How long an erasure is remembered. Three years by default: as long as anything older than an
 * erasure could still be replayed or backfilled (Signal keeps events for replay, warehouses for
 * years), and the general limitation period for claims in much of the EU (e.g. three years in
 * Germany), so a tombstone outlives a dispute about the request. A tombstone holds no address.
 */
export const DEFAULT_RETENTION = Duration.days(3 * 365)
export const retention = Config.duration("MAILJET_TOMBSTONE_RETENTION").pipe(Config.withDefault(DEFAULT_RETENTION))

/** A record's tombstone: `value: {unsub: true}` when the contact was unsubscribed (files before it have no value). */
const tombstoneOf = (r: StoredRecord): Tombstone =>
  typeof r.value === "object" && r.value !== null && (r.value as { unsub?: unknown }).unsub === true ? { at: r.at, unsub: true } : { at: r.at }

/** Writes the set's tombstones over what the file holds (the later time of a key wins), past retention left out. */
export const saveTombstones = (store: typeof StateStore.Service, set: TombstoneSet, oldest: number) =>
  Effect.gen(function*() {
    for (const r of yield* store.read(TOMBSTONES)) set.learn(r.key, tombstoneOf(r))
    const kept: Array<StoredRecord> = []
    for (const [key, t] of set.entries()) if (t.at >= oldest) kept.push(t.unsub === true ? { key, at: t.at, value: { unsub: true } } : { key, at: t.at })
    yield* store.write(TOMBSTONES, kept)
  })

export const layer = Layer.scoped(
  Tombstones,
  Effect.gen(function*() {
    const store = yield* StateStore
    const keep = yield* retention
    const oldest = (yield* Clock.currentTimeMillis) - Duration.toMillis(keep)
    // A state directory that cannot give a key does not stop delivery: erasures are then this
    // run's only, and the write, which cannot succeed, says why.
    let broken: StateUnusable | undefined
    let fallback: (() => Redacted.Redacted<Uint8Array>) | undefined
    const set = makeTombstones(() => {
      try {
        return store.secret()
      } catch (e) {
        broken = e instanceof StateUnusable ? e : new StateUnusable({ path: "secret.key", problem: String(e) })
        return (fallback ??= randomSecret())()
      }
    })
    for (const r of yield* store.read(TOMBSTONES)) if (r.at >= oldest) set.learn(r.key, tombstoneOf(r))
    const save = Effect.suspend(() => broken === undefined ? saveTombstones(store, set, oldest) : Effect.fail(broken)).pipe(
      Effect.catchAll((e) => Effect.logWarning(`erasures not kept for later runs: ${e.message}`)),
      Effect.uninterruptible
    )
    const dirty = yield* Queue.sliding<void>(1)
    let recorded = false
    set.observe(() => {
      recorded = true
      Queue.unsafeOffer(dirty, undefined)
    })
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Queue.take(dirty), save)))
    yield* Effect.addFinalizer(() => (recorded ? save : Effect.void))
    return set
  })
)
