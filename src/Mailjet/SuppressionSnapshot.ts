/**
 * Who the list holds as unsubscribed, without making the first send wait for a large list.
 *
 * The view is the list's unsubscribed recipients (`listrecipient?Unsub=true`, contact IDs, 1,000 a
 * call) with their addresses. An address costs either one call per ID (`contact/{id}`) or a walk
 * of the whole list (`contact?ContactsList=`, 1,000 contacts a call): whichever is fewer calls,
 * and none for an ID whose address a kept view already holds. A view that costs at most
 * BLOCKING_CALLS is read before the first send, as it always was. A larger one is read in the
 * background, through the same pacer as the sends; meanwhile standing consent asks Mailjet about
 * its own contact at its turn (`listrecipient?ContactEmail=`, Suppressions' `asking`), a bulk
 * window waits for the whole view, and everything else is sent at once.
 *
 * Where a view is kept between runs is this service: the CLI's state directory (Run/SnapshotFile),
 * serve's group topic (Kafka/SuppressionTopic), or nowhere. A view read while the set changed (a
 * callback, a run's own unsub or lift, an erasure) never undoes those changes: it is older.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Suppression, SuppressionSet } from "../Suppressions.js"
import { allPages, type MailjetClient, type Recipient } from "./MailjetClient.js"
import { MailjetGateway } from "./MailjetGateway.js"
import { Pacer } from "./Pacer.js"
import {
  applyView,
  type Change,
  type Kept,
  type KeptEntry,
  PAGE,
  patient,
  plan,
  type ReadError,
  type Retrying,
  reasonOf,
  resolve,
  suppressionOf
} from "./SuppressionView.js"

export { applyView, type Change, type Kept, type KeptEntry, plan, reasonOf, suppressionOf }

/** Calls a view may cost before the first send (about a second at 10 calls/s); a larger one is read in the background. */
export const BLOCKING_CALLS = 10

export class SuppressionSnapshot extends Context.Tag("signal-mailjet/SuppressionSnapshot")<SuppressionSnapshot, {
  /** The view kept last, if any. */
  readonly load: Effect.Effect<Option.Option<Kept>>
  /** Keeps a whole view; `change` is what differs from the one kept before. Failures are logged, not raised. */
  readonly save: (kept: Kept, change: Change) => Effect.Effect<void>
  /**
   * How long a kept view is used as it is, without reading Mailjet: serve's group keeps it current
   * with Mailjet's callbacks. Zero for the CLI, which has none: it reads the IDs every run.
   */
  readonly trustFor: Duration.Duration
}>() {
  /** Kept nowhere: every start reads the list's view. */
  static readonly none = Layer.succeed(SuppressionSnapshot, {
    load: Effect.succeedNone,
    save: () => Effect.void,
    trustFor: Duration.zero
  })
}

const ageGauge = Metric.gauge("signal_mailjet_suppressions_age_seconds", {
  description: "How old the view of the list's unsubscribed contacts is: since its last reading from Mailjet began (callbacks keep it current in between)"
})
const wholeGauge = Metric.gauge("signal_mailjet_suppressions_view_whole", {
  description: "1 once the list's unsubscribed contacts are all known; 0 while they are read and standing consent asks Mailjet per contact"
})

export interface Brought {
  /** Suppressions applied before the first send. */
  readonly suppressed: ReadonlyArray<readonly [string, Suppression]>
  /** Unsubscribed recipients whose addresses are still read, in the background. */
  readonly pending: number
  /** Even who they are is read in the background: a large list, with no view kept. */
  readonly unread?: true
}

/**
 * Brings the list's view into `set`: the kept one, then Mailjet's (see the module's comment).
 * `subscribers`: the list's, from preflight, to price a walk of the list. Background work lives as
 * long as the scope.
 */
export const bring = (
  set: SuppressionSet,
  options: {
    readonly subscribers: number | undefined
    readonly retrying: Retrying
    /** Read the whole view before returning, however large (`check`). */
    readonly wait?: boolean
  }
): Effect.Effect<Brought, ReadError, SuppressionSnapshot | MailjetClient | Scope.Scope> =>
  Effect.gen(function*() {
    const store = yield* SuppressionSnapshot
    const gateway = yield* MailjetGateway.fromContext
    const pacer = yield* Effect.serviceOption(Pacer)
    const client = gateway.client
    const kept = yield* store.load
    let before = new Map<string, KeptEntry>()
    if (Option.isSome(kept)) for (const e of kept.value.entries) before.set(e.email, e)
    let takenAt = Option.isSome(kept) ? kept.value.takenAt : undefined
    /** When the last reading began: a refresh is not due before it is as old as a view may be. */
    let lastRead = takenAt ?? 0
    // An erased contact's address leaves the view with it.
    const dropped: Array<KeptEntry> = []
    set.observe({
      added: () => undefined,
      lifted: (email) => {
        const e = before.get(email)
        if (e === undefined) return
        before.delete(email)
        dropped.push(e)
      }
    })
    // Not kept past the run: the view is saved again without them.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() =>
        dropped.length === 0 || takenAt === undefined
          ? Effect.void
          : store.save({ takenAt, entries: [...before.values()] }, { added: [], removed: dropped.splice(0) })
      )
    )
    yield* Effect.forkScoped(Effect.repeat(
      Effect.suspend(() =>
        takenAt === undefined
          ? Effect.void
          : Effect.flatMap(Clock.currentTimeMillis, (now) => Metric.set(ageGauge, Math.max(0, (now - takenAt!) / 1000)))
      ),
      Schedule.spaced("1 second")
    ))

    /** Reads the IDs now; what they cost in addresses decides: now, or in the background (unless `whole`). */
    const read = (whole: boolean, retrying: Retrying): Effect.Effect<Brought, ReadError, Scope.Scope> =>
      Effect.gen(function*() {
        const touched = set.touching()
        const started = yield* Clock.currentTimeMillis
        lastRead = started
        const finish = (entries: ReadonlyArray<KeptEntry>) =>
          Effect.gen(function*() {
            // A contact touched meanwhile and no longer held (a lift, an erasure) is not kept either.
            const kept = entries.filter((e) => !touched.has(e.email) || set.get(e.email) !== undefined)
            const change = applyView(set, touched, before, kept)
            touched.close()
            before = new Map(kept.map((e) => [e.email, e]))
            takenAt = started
            yield* Metric.set(wholeGauge, 1)
            yield* store.save({ takenAt: started, entries: kept }, change)
            return kept
          })
        /** Standing consent asks Mailjet per contact while `work` reads the view behind the sends. */
        const behind = (work: Effect.Effect<ReadonlyArray<KeptEntry>, ReadError>) =>
          Effect.gen(function*() {
            yield* Metric.set(wholeGauge, 0)
            const reading = set.reading((email) =>
              Effect.map(client.listRecipient(email), (s) =>
                s._tag === "Unsubscribed" ? { reason: reasonOf(s.unsubscribedAt), at: s.unsubscribedAt } : undefined)
            )
            yield* Effect.forkScoped(
              work.pipe(
                Effect.flatMap(finish),
                Effect.tap(() => Effect.sync(reading.complete)),
                Effect.tap((entries) => Effect.logInfo(`suppressions: the list's view is whole (${entries.length} unsubscribed)`)),
                Effect.catchAll((e) =>
                  Effect.zipRight(
                    Effect.sync(reading.gaveUp),
                    Effect.logError(`suppressions: the list's view could not be read: ${e.message}. Standing consent keeps asking Mailjet per contact`)
                  )
                )
              )
            )
          })
        const subscribers = options.subscribers
        if (!whole && before.size === 0 && subscribers !== undefined && Math.ceil(subscribers / PAGE) > BLOCKING_CALLS) {
          // Cold, on a list too large to walk before the first send: its IDs too are read behind the
          // sends (a few calls fewer before them: what a short run against a large list waits for).
          const patiently = patient(gateway, pacer)
          yield* behind(Effect.flatMap(
            allPages((p) => patiently(client.unsubscribedRecipients(p))),
            (ids) => resolve(client, patiently, ids, plan(ids.length, subscribers + ids.length).walk)
          ))
          yield* Effect.logInfo(
            `suppressions: a list of ${subscribers} contacts and no view of it kept: who is unsubscribed is read in the background, standing consent asks Mailjet per contact meanwhile`
          )
          return { suppressed: [], pending: 0, unread: true } as const
        }
        const ids = yield* allPages((p) => retrying(client.unsubscribedRecipients(p)))
        // A small list is read whole, as if nothing were kept: only a large one leans on the kept addresses.
        const small = plan(ids.length, (options.subscribers ?? Infinity) + ids.length).calls <= BLOCKING_CALLS
        const byId = new Map(small ? [] : Array.from(before.values(), (e) => [e.id, e] as const))
        const known: Array<KeptEntry> = []
        const unresolved: Array<Recipient> = []
        for (const r of ids) {
          const e = byId.get(r.contactId)
          if (e === undefined) unresolved.push(r)
          else known.push({ ...e, at: r.unsubscribedAt })
        }
        const way = plan(unresolved.length, (options.subscribers ?? Infinity) + ids.length)
        if (whole || way.calls <= BLOCKING_CALLS) {
          const entries = yield* Effect.flatMap(resolve(client, retrying, unresolved, way.walk), (found) => finish([...known, ...found]))
          return { suppressed: entries.map((e) => [e.email, suppressionOf(e)] as const), pending: 0 }
        }
        // What the kept view resolves applies now; who is no longer unsubscribed is lifted now too.
        applyView(set, touched, before, known, false)
        const still = new Set(ids.map((r) => r.contactId))
        for (const [email, e] of before) if (!still.has(e.id) && !touched.has(email)) set.learn(email, undefined)
        yield* behind(Effect.map(resolve(client, patient(gateway, pacer), unresolved, way.walk), (found) => [...known, ...found]))
        yield* Effect.logInfo(
          `suppressions: ${ids.length} contacts of the list are unsubscribed in Mailjet; ${unresolved.length} addresses read in the background (${way.calls} calls), standing consent asks Mailjet per contact meanwhile`
        )
        return { suppressed: known.map((e) => [e.email, suppressionOf(e)] as const), pending: unresolved.length }
      })

    const now = yield* Clock.currentTimeMillis
    const trusted = Option.isSome(kept) && now - kept.value.takenAt < Duration.toMillis(store.trustFor)
    let brought: Brought
    if (trusted) {
      // Kept current by the group's callbacks: applied as it is (the follower of the topic did).
      for (const e of kept.value.entries) if (set.get(e.email) === undefined) set.learn(e.email, suppressionOf(e))
      yield* Metric.set(wholeGauge, 1)
      brought = { suppressed: kept.value.entries.map((e) => [e.email, suppressionOf(e)] as const), pending: 0 }
    } else {
      for (const e of before.values()) set.learn(e.email, suppressionOf(e))
      brought = yield* read(options.wait === true, options.retrying)
    }
    // Refreshed in the background once it is as old as it may be, if it is ever trusted.
    if (Duration.toMillis(store.trustFor) > 0) {
      const refresh = Effect.gen(function*() {
        const latest = yield* store.load
        const at = Math.max(lastRead, Option.isSome(latest) ? latest.value.takenAt : 0)
        const wait = at + Duration.toMillis(store.trustFor) - (yield* Clock.currentTimeMillis)
        // Another worker of the group refreshed it meanwhile: its view is this one's too.
        if (wait > 0) return yield* Effect.sleep(Duration.millis(wait))
        yield* read(true, patient(gateway, pacer))
      })
      yield* Effect.forkScoped(Effect.forever(Effect.catchAll(refresh, (e) =>
        Effect.zipRight(Effect.logWarning(`suppressions: refresh failed: ${e.message}; trying again in a minute`), Effect.sleep("1 minute")))))
    }
    return brought
  })
