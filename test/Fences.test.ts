/**
 * Fences of bulk jobs that may still land: this process's own, and those learnt from other workers
 * (shared on the suppressions topic by `serve`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Option } from "effect"
import { type Fence, makeFences } from "../src/Delivery/Fences.js"

const jobsOf = (fences: ReturnType<typeof makeFences>, emails: ReadonlyArray<string>) => fences.of(emails).map((f) => f.job).sort()

describe("Fences", () => {
  it.effect("a job learnt from another worker fences its contacts, in as many parts as it was shared in, until it is forgotten", () =>
    Effect.gen(function*() {
      const fences = makeFences()
      const told: Array<string> = []
      fences.observe({ opened: (f) => told.push(`opened ${f.job}`), ended: (f) => told.push(`ended ${f.job}`) })
      const first = fences.learn(7, ["a@x.io", "b@x.io"])
      expect(Option.isSome(first)).toBe(true)
      // The second part joins the same fence; nothing new to watch.
      expect(Option.isNone(fences.learn(7, ["c@x.io"]))).toBe(true)
      expect(jobsOf(fences, ["a@x.io", "b@x.io", "c@x.io", "d@x.io"])).toEqual([7])
      yield* fences.forget(7)
      expect(yield* Deferred.isDone(Option.getOrThrow(first).ended)).toBe(true)
      expect(jobsOf(fences, ["a@x.io", "c@x.io"])).toEqual([])
      // Learnt and forgotten jobs are the other worker's to share: nothing told.
      expect(told).toEqual([])
    }))

  it.effect("a learnt job never takes a contact from the job already fencing it here, so a later update still waits for that one", () =>
    Effect.gen(function*() {
      const fences = makeFences()
      const own = fences.open(1, ["a@x.io"])
      fences.learn(2, ["a@x.io", "b@x.io"])
      expect(fences.of(["a@x.io"])).toEqual([own])
      // Forgetting the learnt job leaves this process's fence in place.
      yield* fences.forget(2)
      expect(fences.of(["a@x.io", "b@x.io"])).toEqual([own])
    }))

  it.effect("this process's jobs are told when opened, and once when seen to end", () =>
    Effect.gen(function*() {
      const fences = makeFences()
      const told: Array<string> = []
      fences.observe({ opened: (f: Fence) => told.push(`opened ${f.job} ${f.emails.join(",")}`), ended: (f) => told.push(`ended ${f.job}`) })
      const f = fences.open(3, ["a@x.io", "b@x.io"])
      yield* fences.close(f)
      yield* fences.close(f)
      expect(told).toEqual(["opened 3 a@x.io,b@x.io", "ended 3"])
      expect(fences.of(["a@x.io"])).toEqual([])
    }))

  it.effect("a job opened held (its window holds the contacts) fences them only once held, until it ends; held after its end, nothing", () =>
    Effect.gen(function*() {
      const fences = makeFences()
      const told: Array<string> = []
      fences.observe({ opened: (f) => told.push(`opened ${f.job} ${f.emails.length}`), ended: (f) => told.push(`ended ${f.job}`) })
      const late = fences.openHeld(3, ["a@x.io", "b@x.io"])
      expect(jobsOf(fences, ["a@x.io", "b@x.io"])).toEqual([])
      fences.hold(late)
      expect(jobsOf(fences, ["a@x.io", "b@x.io", "c@x.io"])).toEqual([3])
      yield* fences.close(late)
      expect(jobsOf(fences, ["a@x.io", "b@x.io"])).toEqual([])
      const ended = fences.openHeld(4, ["c@x.io"])
      yield* fences.close(ended)
      fences.hold(ended)
      expect(jobsOf(fences, ["c@x.io"])).toEqual([])
      // Shared like any job of this process: told when opened, once when seen to end.
      expect(told).toEqual(["opened 3 2", "ended 3", "opened 4 1", "ended 4"])
    }))
})
