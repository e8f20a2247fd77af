/**
 * The list's view of who is unsubscribed, as data and the calls that read it: what a view holds,
 * applying one to the suppression set, the cheaper way to the addresses, and background reads that
 * yield to the sends. SuppressionSnapshot brings a view in with these.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { Suppression, SuppressionSet, Touched } from "../Suppressions.js"
import type { MailjetClient, Recipient } from "./MailjetClient.js"
import type { MailjetGateway } from "./MailjetGateway.js"
import { isTransient, type MailjetUnavailable, type RateLimited, type Unauthorized } from "./MailjetError.js"
import type { Pacer } from "./Pacer.js"

export const PAGE = 1000

/** One unsubscribed recipient of the list: its contact ID, address (lowercase) and when (ISO, or ""). */
export interface KeptEntry {
  readonly id: number
  readonly email: string
  readonly at: string
}

/** A whole view, and when its reading began (epoch ms). */
export interface Kept {
  readonly takenAt: number
  readonly entries: ReadonlyArray<KeptEntry>
}

/** What a new view changes in the one kept before. */
export interface Change {
  readonly added: ReadonlyArray<KeptEntry>
  readonly removed: ReadonlyArray<KeptEntry>
}

export const reasonOf = (at: string): string => `unsubscribed in Mailjet${at === "" ? "" : ` at ${at}`}`
export const suppressionOf = (e: KeptEntry): Suppression => ({ reason: reasonOf(e.at), at: e.at })

/**
 * Applies a view to the set: what it holds is learnt, what the view before held and it does not is
 * lifted; an address a change touched meanwhile is left as that change made it. Pure over the set.
 */
export const applyView = (
  set: SuppressionSet,
  touched: Touched,
  before: ReadonlyMap<string, KeptEntry>,
  entries: ReadonlyArray<KeptEntry>,
  /** Whether the view is whole: only then is what it lacks lifted. */
  whole = true
): Change => {
  const added: Array<KeptEntry> = []
  const removed: Array<KeptEntry> = []
  const now = new Set<string>()
  for (const e of entries) {
    now.add(e.email)
    if (touched.has(e.email)) continue
    if (!before.has(e.email)) added.push(e)
    set.learn(e.email, suppressionOf(e))
  }
  if (whole) {
    for (const [email, e] of before) {
      if (now.has(email) || touched.has(email)) continue
      removed.push(e)
      set.learn(email, undefined)
    }
  }
  return { added, removed }
}

export type Retrying = <A, E extends { readonly _tag: string; readonly message: string }>(e: Effect.Effect<A, E>) => Effect.Effect<A, E>
export type ReadError = Unauthorized | RateLimited | MailjetUnavailable

/** The addresses of `ids`: by walking the list or one call each, whichever is fewer calls. */
export const resolve = (
  client: typeof MailjetClient.Service,
  retrying: Retrying,
  ids: ReadonlyArray<Recipient>,
  /** The list's contacts to walk, or undefined: one call per ID. */
  walk: number | undefined
): Effect.Effect<Array<KeptEntry>, ReadError> =>
  Effect.gen(function*() {
    const wanted = new Map(ids.map((r) => [r.contactId, r.unsubscribedAt]))
    const out: Array<KeptEntry> = []
    if (walk !== undefined) {
      // Each page as it comes, one at a time: a small share of the budget beside the sends, and no list held.
      const take = (page: ReadonlyArray<{ readonly id: number; readonly email: string }>) => {
        for (const c of page) {
          const at = wanted.get(c.id)
          if (at === undefined) continue
          wanted.delete(c.id)
          out.push({ id: c.id, email: c.email.toLowerCase(), at })
        }
        return page.length
      }
      const pages = Math.ceil(walk / PAGE)
      const sizes = yield* Effect.forEach(
        Array.from({ length: pages }, (_, i) => i * PAGE),
        (offset) => Effect.map(retrying(client.contactsInList({ offset, limit: PAGE })), take),
        { concurrency: 1 }
      )
      // The list grew meanwhile: on, page by page, until a short one.
      for (let offset = pages * PAGE; sizes.length === 0 || sizes[sizes.length - 1] === PAGE; offset += PAGE) {
        sizes.push(take(yield* retrying(client.contactsInList({ offset, limit: PAGE }))))
        if (sizes.length > pages + 1_000_000) break
      }
    }
    // One call each; after a walk, only those the list no longer held by the time it was walked.
    for (const [id, at] of wanted) {
      const found = yield* retrying(client.getContact(String(id)))
      if (Option.isSome(found)) out.push({ id, email: found.value.email.toLowerCase(), at })
    }
    return out
  })

/** The cheaper way to the addresses of `unresolved`, in calls, for a list of `contacts`. */
export const plan = (unresolved: number, contacts: number): { readonly calls: number; readonly walk: number | undefined } => {
  const pages = Math.max(1, Math.ceil(contacts / PAGE))
  return pages < unresolved ? { calls: pages, walk: contacts } : { calls: unresolved, walk: undefined }
}

/**
 * A background call's turn: when the sends leave a slot free, and at least one a second whatever
 * they do, after the first seconds: a short run does not pay for a view it will not use.
 */
const BACKGROUND_EVERY = 1000
const BACKGROUND_AFTER = 5000

/**
 * Background reads: they yield to the sends (a slot nobody reserved, or one a second), are paced
 * like every call, and are retried for as long as Mailjet is only unavailable.
 */
export const patient = (gateway: typeof MailjetGateway.Service, pacer: Option.Option<typeof Pacer.Service>): Retrying => {
  let last: number | undefined
  let quiet = false
  const turn = Option.match(pacer, {
    onNone: () => Effect.void,
    onSome: (p) =>
      Effect.gen(function*() {
        while (true) {
          const now = yield* Clock.currentTimeMillis
          last ??= now - BACKGROUND_EVERY + BACKGROUND_AFTER
          // Quiet: no slot reserved ahead now, nor 50 ms ago; a lull between two sends is not one.
          const idle = yield* p.idle
          if (now - last >= BACKGROUND_EVERY || (idle && quiet)) {
            last = now
            return
          }
          quiet = idle
          yield* Effect.sleep(Duration.millis(50))
        }
      })
  })
  return (e) =>
    Effect.zipRight(
      turn,
      Effect.retry(gateway.paced(e), {
        schedule: Schedule.exponential("1 second").pipe(Schedule.union(Schedule.spaced("30 seconds"))),
        while: isTransient
      })
    )
}
