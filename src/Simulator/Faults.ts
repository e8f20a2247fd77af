/**
 * Injected faults: outage, connection resets, a per-key rate limit and random server errors,
 * drawn from a seeded generator so a test can replay the same sequence.
 */
import { internalError, type Outcome, RESET, TOO_MANY, UNAVAILABLE } from "./Replies.js"

export interface SimulatorFaults {
  /** Added to every reply (after the request has been applied). */
  readonly latencyMs?: number | undefined
  /** Requests per second allowed (sliding one-second window); beyond it 429 with Mailjet's HTML body. */
  readonly maxRps?: number | undefined
  /** Share 0..1 of requests answered 500 (JSON with ErrorIdentifier) or 503. */
  readonly errorRate?: number | undefined
  /** Share 0..1 of requests whose connection is reset without a reply. */
  readonly resetRate?: number | undefined
  /** Every request answered 503 while true. */
  readonly outage?: boolean | undefined
  /** How long a bulk job (managemanycontacts) runs before it ends. Default 0: done at its first poll. */
  readonly jobDurationMs?: number | undefined
  /** Share 0..1 of bulk jobs that end in `Error` (or `Abort`), applying none of their contacts. */
  readonly jobErrorRate?: number | undefined
  /** Share 0..1 of bulk jobs that get stuck in `Importing`. */
  readonly jobStuckRate?: number | undefined
  /** When a stuck job ends after all and applies its contacts, late (ms after its POST). Default: never. */
  readonly jobStuckMs?: number | undefined
  /** Contacts one managemanycontacts call may carry; 400 above it. Default 5000. */
  readonly bulkMaxContacts?: number | undefined
}

export type JobFate = "Completed" | "Error" | "Abort" | "Stuck"

/** mulberry32: tiny, fast, good enough for fault draws. */
const makePrng = (seed: number): () => number => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface Faults {
  readonly latencyMs: () => number
  readonly set: (faults: SimulatorFaults) => void
  /** Before authentication: the service or the network failing. */
  readonly beforeAuth: () => Outcome | undefined
  /** After authentication: Mailjet limits per API key, so only authenticated requests count. */
  readonly afterAuth: (now: number) => Outcome | undefined
  /** Forgets the rate window. */
  readonly reset: () => void
  /** How a new bulk job will end, and when. */
  readonly job: () => { readonly fate: JobFate; readonly durationMs: number; readonly maxContacts: number }
}

export const makeFaults = (initial: SimulatorFaults, seed: number): Faults => {
  const random = makePrng(seed)
  let faults = initial

  // Sliding one-second window: a ring of the arrival times of the last `maxRps` admitted requests.
  let window: Array<number> = []
  let windowHead = 0
  const admit = (now: number, maxRps: number): boolean => {
    const capacity = Math.max(0, Math.floor(maxRps))
    if (capacity === 0) return false
    if (window.length > capacity || (window.length < capacity && windowHead !== 0)) {
      // The limit changed: start a fresh window.
      window = []
      windowHead = 0
    }
    if (window.length < capacity) {
      window.push(now)
      return true
    }
    // Rejected requests do not count, so a client that backs off recovers within a second.
    if (window[windowHead]! > now - 1000) return false
    window[windowHead] = now
    windowHead = (windowHead + 1) % capacity
    return true
  }

  const guid = (): string => {
    const hex = (n: number) =>
      Array.from({ length: n }, () => Math.floor(random() * 16).toString(16)).join("").toUpperCase()
    return `${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}`
  }

  return {
    latencyMs: () => faults.latencyMs ?? 0,
    set: (next) => {
      faults = next
    },
    beforeAuth: () => {
      if (faults.outage === true) return UNAVAILABLE
      if (faults.resetRate !== undefined && faults.resetRate > 0 && random() < faults.resetRate) return RESET
      return undefined
    },
    afterAuth: (now) => {
      if (faults.maxRps !== undefined && !admit(now, faults.maxRps)) return TOO_MANY
      if (faults.errorRate !== undefined && faults.errorRate > 0 && random() < faults.errorRate) {
        return random() < 0.5 ? internalError(guid()) : UNAVAILABLE
      }
      return undefined
    },
    reset: () => {
      window = []
      windowHead = 0
    },
    job: () => {
      const draw = random()
      const error = faults.jobErrorRate ?? 0
      const fate: JobFate = draw < error ? (random() < 0.5 ? "Error" : "Abort") : draw < error + (faults.jobStuckRate ?? 0) ? "Stuck" : "Completed"
      return {
        fate,
        durationMs: fate === "Stuck" ? faults.jobStuckMs ?? Infinity : faults.jobDurationMs ?? 0,
        maxContacts: faults.bulkMaxContacts ?? 5000
      }
    }
  }
}
