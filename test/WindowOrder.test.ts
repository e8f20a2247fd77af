/**
 * A bulk window's place in its contacts' lines (order.ts `takeWindow`, contactSet.ts) as laws, in
 * virtual time: a window holds its contacts as hashes, one ticket for all of them, and single
 * events and windows still go one after another per contact, in the order they were taken, even
 * when two emails share a hash (then one waits for the other: more order, never less). While a
 * window gathers, its contacts are told apart exactly (emailPlaces.ts), whatever their hashes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Schema, TestClock } from "effect"
import { ContactSet, emailHash } from "../src/internal/contactSet.js"
import { EmailPlaces } from "../src/internal/emailPlaces.js"
import { makeOrder } from "../src/internal/order.js"

const CONTACTS = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"] as const
const Contact = Schema.Literal(...CONTACTS)
/** A single event (one contact) or a window (its distinct contacts), and how long it takes. */
const Unit = Schema.Struct({
  contacts: Schema.Array(Contact).pipe(Schema.minItems(1), Schema.maxItems(4)),
  window: Schema.Boolean,
  ms: Schema.Int.pipe(Schema.between(0, 40))
})
/** The exact hash, or ones that make emails collide: every email one hash, or two groups. */
const Hashing = Schema.Literal("exact", "all-collide", "two-groups")
/**
 * The window index's buckets: one or two (every hash shares its bucket with others, so the search
 * starts at windows that do not hold it, and at released ones), or the engine's own.
 */
const Buckets = Schema.Literal(1, 2, 2 ** 19)
const hashOf = (h: typeof Hashing.Type) =>
  h === "exact" ? emailHash : h === "all-collide" ? () => 7 : (s: string) => (s < "c" ? 11 : 12)

/** Runs the units in virtual time, tickets taken in input order; each one's start and end. */
const runUnits = (units: ReadonlyArray<{ readonly contacts: ReadonlyArray<string>; readonly window: boolean; readonly ms: number }>, hash: (s: string) => number, buckets?: number) =>
  Effect.gen(function*() {
    const order = makeOrder(Duration.minutes(1), hash, buckets)
    // Taken in input order, as the engine's sequential stage (and the window path's) takes them.
    const places = units.map((u) => {
      if (u.window) {
        const t = order.takeWindow(u.contacts.map(hash))
        return { turn: order.windowTurn(t), release: order.releaseWindow(t) }
      }
      const t = order.take(u.contacts[0]!)
      return { turn: order.turn(t), release: order.release(t) }
    })
    const log = new Map<number, { readonly start: number; readonly end: number }>()
    const fibers = yield* Effect.forEach(units, (u, i) =>
      Effect.fork(Effect.gen(function*() {
        yield* places[i]!.turn
        const start = yield* TestClock.currentTimeMillis
        yield* Effect.sleep(u.ms)
        log.set(i, { start, end: yield* TestClock.currentTimeMillis })
      }).pipe(Effect.ensuring(places[i]!.release))))
    yield* TestClock.adjust(Duration.seconds(10))
    yield* Fiber.joinAll(fibers)
    return log
  })

describe("WindowOrder", () => {
  it.effect.prop(
    "law: an event or window starts only once every earlier one sharing a contact ended, whatever the hash and however the window index's buckets are shared; with distinct hashes, as soon as the latest of them ended",
    { units: Schema.Array(Unit).pipe(Schema.maxItems(20)), hashing: Hashing, buckets: Buckets },
    ({ buckets, hashing, units }) =>
      Effect.gen(function*() {
        const shaped = units.map((u) => ({ ...u, contacts: u.window ? [...new Set(u.contacts)] : [u.contacts[0]!] }))
        const log = yield* runUnits(shaped, hashOf(hashing), buckets)
        // Every unit ran: nothing waits for ever (a unit only ever waits for earlier ones).
        expect(log.size).toBe(shaped.length)
        for (let j = 0; j < shaped.length; j++) {
          let ready = 0
          for (let i = 0; i < j; i++) {
            if (!shaped[i]!.contacts.some((c) => shaped[j]!.contacts.includes(c))) continue
            expect(log.get(j)!.start).toBeGreaterThanOrEqual(log.get(i)!.end)
            ready = Math.max(ready, log.get(i)!.end)
          }
          // Distinct hashes: nothing else held it back.
          if (hashing === "exact") expect(log.get(j)!.start).toBe(ready)
        }
      }),
    { fastCheck: { numRuns: 200 } }
  )

  it.effect("with every hash alike, an event waits for the window that holds its contact, not only the latest that may (found by the law above)", () =>
    Effect.gen(function*() {
      // The window of c took c's place from its live event and, before the fix, did not wait for
      // the window of d: d's event found it as the latest that may hold d and overtook d's window.
      const units = [
        { contacts: ["c@x.io"], window: false, ms: 0 },
        { contacts: ["d@x.io"], window: true, ms: 1 },
        { contacts: ["c@x.io"], window: true, ms: 0 },
        { contacts: ["d@x.io"], window: false, ms: 0 }
      ]
      const log = yield* runUnits(units, () => 7)
      expect(log.get(3)!.start).toBeGreaterThanOrEqual(log.get(1)!.end)
    }))

  it.prop(
    "law: a contact set has every hash added to it, however many (it grows past the size it was made for), and none other of a distinct few",
    { hashes: Schema.Array(Schema.Int.pipe(Schema.between(1, 2 ** 40))).pipe(Schema.maxItems(300)), expected: Schema.Int.pipe(Schema.between(0, 50)) },
    ({ expected, hashes }) => {
      const set = new ContactSet(expected)
      for (const h of hashes) set.add(h)
      for (const h of hashes) expect(set.has(h)).toBe(true)
      expect(set.size).toBe(new Set(hashes).size)
      for (const h of [2 ** 41, 2 ** 41 + 1, 2 ** 42 + 8]) expect(set.has(h)).toBe(false)
    },
    { fastCheck: { numRuns: 200 } }
  )

  it.prop(
    "law: a gathering window's email places give each email the place of its first update, exactly, whatever the hash; its hashes are its distinct contacts', in the order they came",
    {
      // Few distinct emails (repeats), some long (their units outgrow the first array), many updates (the tables grow).
      emails: Schema.Array(Schema.Int.pipe(Schema.between(0, 120))).pipe(Schema.maxItems(400)),
      long: Schema.Int.pipe(Schema.between(0, 40)),
      hashing: Hashing
    },
    ({ emails, hashing, long }) => {
      const hash = hashOf(hashing)
      // Emails that differ in their first unit only, or where one begins the other: a hash that
      // collides must not join them.
      const email = (n: number) => `${n % 7 === 0 ? "x".repeat(long) : ""}${"abc"[n % 3]}${Math.floor(n / 6)}@x.io${n % 6 < 3 ? "" : ".uk"}`
      const places = new EmailPlaces(hash)
      const firsts = new Map<string, number>()
      emails.forEach((n, k) => {
        const e = email(n)
        if (!firsts.has(e)) firsts.set(e, k)
        expect(places.placeOf(e, k)).toBe(firsts.get(e))
      })
      expect(places.size).toBe(firsts.size)
      expect([...places.contactHashes()]).toStrictEqual([...firsts.keys()].map(hash))
      places.clear()
      expect(places.size).toBe(0)
      expect(places.placeOf(email(0), 5)).toBe(5)
    },
    { fastCheck: { numRuns: 200 } }
  )

  it("the emails' hash is stable and spreads: 100,000 emails, no two alike", () => {
    expect(emailHash("ann@example.com")).toBe(emailHash("ann@example.com"))
    const seen = new Set<number>()
    for (let i = 0; i < 100_000; i++) seen.add(emailHash(`bulk-${i}@example.com`))
    expect(seen.size).toBe(100_000)
  })
})
