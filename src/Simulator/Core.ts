/**
 * The simulator as plain synchronous code: no Effect, no socket. `Simulator.ts` serves it over
 * HTTP. Synchronous, so every request is atomic (no interleaving between validation and
 * mutation) and per-request work stays small. This module orders the stages of a request; the
 * parts live beside it: `State` (the account), `Routes` (the resources), `Faults`, `Replies`
 * (every recorded shape, with its source) and `Validation`.
 */
import { type CallbackOptions, makeCallbacks } from "./Callbacks.js"
import { eraseRoute } from "./Erase.js"
import { makeFaults, type SimulatorFaults } from "./Faults.js"
import { NGINX_404, type Outcome, UNAUTHORIZED, unknownModule } from "./Replies.js"
import { makeRoutes } from "./Routes.js"
import { FRESH_ACCOUNT_PROPERTIES, makeState, type RecordedRequest, type SimulatedContact } from "./State.js"
import { type Datatype, parseQuery, readBody } from "./Validation.js"

export type { SimulatorFaults } from "./Faults.js"
export { TOO_MANY_REQUESTS_BODY } from "./Replies.js"
export type { Outcome } from "./Replies.js"
export type { Membership, RecordedRequest, SimulatedContact } from "./State.js"
export type { Datatype } from "./Validation.js"
export { FRESH_ACCOUNT_PROPERTIES } from "./State.js"

export interface SimulatorOptions {
  readonly apiKey: string
  readonly secretKey: string
  /** Default `[{ id: 1, name: "Signal" }]`. */
  readonly lists?: ReadonlyArray<{ readonly id: number; readonly name: string }> | undefined
  /**
   * Pre-defined contact properties (contactmetadata, NameSpace "static"). Default: a fresh
   * account's (`FRESH_ACCOUNT_PROPERTIES`: firstname, name, country, newsletter_sub).
   */
  readonly properties?: ReadonlyArray<{ readonly name: string; readonly datatype: Datatype }> | undefined
  readonly faults?: SimulatorFaults | undefined
  /** Seed for the fault draws, so tests are reproducible. Default: random. */
  readonly seed?: number | undefined
  /** How many recorded requests are kept (oldest dropped first). Default 100,000. */
  readonly recordLimit?: number | undefined
  /**
   * Default true. False keeps no request log (`requests` stays empty): for benchmarks, where the
   * client is what is measured and the log would only cost memory and time.
   */
  readonly recordRequests?: boolean | undefined
  /** Mailjet's retry rule for event callbacks (every 30 s for 24 h), shortened for tests. */
  readonly callbacks?: CallbackOptions | undefined
  /**
   * A large list held from the start (and again after a reset), without a managecontact call per
   * contact: tests and the bench of a list's suppressions (`simulate --seed-contacts`).
   */
  readonly seedContacts?: SeedContacts | undefined
}

/** `count` contacts `seed-{n}@example.com` in the first list; every `1 / unsubscribedRatio`-th unsubscribed. */
export interface SeedContacts {
  readonly count: number
  readonly unsubscribedRatio: number
}

/** The address of the `n`-th seeded contact (from 1). */
export const seededEmail = (n: number): string => `seed-${n}@example.com`

/** Whether the `n`-th seeded contact is unsubscribed: evenly spread, `ratio` of them. */
export const seededUnsubscribed = (n: number, ratio: number): boolean =>
  ratio > 0 && Math.floor(n * ratio) !== Math.floor((n - 1) * ratio)

export interface Incoming {
  readonly method: string
  readonly url: string
  readonly authorization: string | undefined
  readonly body: string | undefined
  readonly now: number
}

export interface Core {
  readonly handle: (request: Incoming) => Outcome
  readonly latencyMs: () => number
  readonly contacts: () => ReadonlyArray<SimulatedContact>
  readonly contact: (email: string) => SimulatedContact | undefined
  readonly requests: () => ReadonlyArray<RecordedRequest>
  readonly setFaults: (faults: SimulatorFaults) => void
  readonly reset: () => void
  /** Event callbacks not yet answered 200, answered, and given up on. */
  readonly callbackStats: () => { readonly pending: number; readonly delivered: number; readonly abandoned: number }
  /** Stops the callbacks' retries. */
  readonly close: () => void
}

const DEFAULT_LISTS = [{ id: 1, name: "Signal" }] as const

const pathSegments = (pathname: string): Array<string> => {
  const segments: Array<string> = []
  for (const raw of pathname.split("/")) {
    if (raw === "") continue
    try {
      segments.push(decodeURIComponent(raw))
    } catch {
      segments.push(raw)
    }
  }
  return segments
}

export const makeCore = (options: SimulatorOptions): Core => {
  const state = makeState({
    lists: options.lists ?? DEFAULT_LISTS,
    properties: options.properties ?? FRESH_ACCOUNT_PROPERTIES,
    recordLimit: options.recordLimit ?? 100_000,
    recordRequests: options.recordRequests ?? true
  })
  const seed = () => {
    const s = options.seedContacts
    const list = state.lists.values().next().value
    if (s === undefined || list === undefined) return
    const now = Date.now()
    for (let n = 1; n <= s.count; n++) {
      const c = state.addContact(seededEmail(n), now)
      state.setMembership(c, list, "subscribed", now)
      if (seededUnsubscribed(n, s.unsubscribedRatio)) state.setMembership(c, list, "unsubscribed", now)
    }
  }
  seed()
  const callbacks = makeCallbacks(state, options.callbacks)
  const faults = makeFaults(options.faults ?? {}, options.seed ?? Math.floor(Math.random() * 4294967296))
  const route = makeRoutes(state, faults)
  const erase = eraseRoute(state)
  const expectedAuth = "Basic " + Buffer.from(`${options.apiKey}:${options.secretKey}`, "utf8").toString("base64")

  const isAuthorized = (header: string | undefined): boolean => {
    if (header === undefined) return false
    if (header === expectedAuth) return true
    const space = header.indexOf(" ")
    if (space === -1 || header.slice(0, space).toLowerCase() !== "basic") return false
    const decoded = Buffer.from(header.slice(space + 1).trim(), "base64").toString("utf8")
    const colon = decoded.indexOf(":")
    return colon !== -1 && decoded.slice(0, colon) === options.apiKey && decoded.slice(colon + 1) === options.secretKey
  }

  const respond = (request: Incoming, pathname: string, search: string, body: ReturnType<typeof readBody>): Outcome => {
    const early = faults.beforeAuth()
    if (early !== undefined) return early
    const segments = pathSegments(pathname)
    // The simulator's own actions, outside Mailjet's API: what a recipient does to an email.
    if (segments[0] === "_sim" && segments[1] === "recipient" && segments.length === 3 && request.method === "POST") {
      return isAuthorized(request.authorization) ? callbacks.recipient(segments[2]!, body, request.now) : UNAUTHORIZED
    }
    const v4 = segments[0] === "v4" && segments[1]?.toLowerCase() === "contacts" && segments.length === 3
    if (segments[0] !== "v3" && !v4) return NGINX_404
    if (!isAuthorized(request.authorization)) return UNAUTHORIZED
    const late = faults.afterAuth(request.now)
    if (late !== undefined) return late
    if (v4) return erase(request.method, segments[2]!, request.now)
    const module = segments[1] ?? ""
    route.advance(request.now)
    if (module.toLowerCase() === "data" && request.method === "GET") return route.data(segments.slice(2))
    if (module.toLowerCase() !== "rest") return unknownModule(module)
    if (segments[2]?.toLowerCase() === "eventcallbackurl" && segments.length <= 4) {
      return callbacks.route(request.method, segments[3], body)
    }
    return route(request.method, segments.slice(2), parseQuery(search), body, request.now)
  }

  return {
    handle: (request) => {
      const q = request.url.indexOf("?")
      const pathname = q === -1 ? request.url : request.url.slice(0, q)
      const search = q === -1 ? "" : request.url.slice(q + 1)
      const body = readBody(request.body)
      const outcome = respond(request, pathname, search, body)
      if (state.recording) {
        state.record({
          method: request.method,
          path: request.url,
          body: body.json !== undefined ? body.json.value : body.raw === "" ? undefined : body.raw,
          status: outcome._tag === "Reply" ? outcome.status : 0,
          at: request.now
        })
      }
      return outcome
    },
    latencyMs: faults.latencyMs,
    contacts: () => {
      route.advance(Date.now())
      return state.allContacts().map(state.snapshot)
    },
    contact: (email) => {
      route.advance(Date.now())
      const c = state.contactByEmail(email)
      return c === undefined ? undefined : state.snapshot(c)
    },
    requests: state.requests,
    setFaults: faults.set,
    reset: () => {
      state.reset()
      seed()
      faults.reset()
      route.resetJobs()
    },
    callbackStats: callbacks.stats,
    close: callbacks.close
  }
}
