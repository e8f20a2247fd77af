/**
 * Event → decode → consent → map → (pace, per-contact order) → Mailjet → outcome.
 *
 * `run` turns a stream of NDJSON lines into one `Result` per line, in input order. Events of one
 * contact are sent one after another in input order; other contacts go in parallel up to the
 * configured concurrency. Fatal errors, an outage or `stop` end the sending: what is in flight
 * finishes, everything after it is `not-attempted`, and the stream still yields a result for
 * every line it reads.
 *
 * Longer than 300 lines: the send loop (stop, pacing, the replay's read, partial updates, retries)
 * is one state machine per event, kept whole so its order of checks reads top to bottom; what it
 * decides without I/O is in Prepare.ts. The windowed path (MAILJET_BULK) sits beside it because it
 * shares the decide step, the send loop (its fallback) and the outcome logging; the jobs
 * themselves are in Bulk.ts.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import { Consent } from "../Consent.js"
import { decodeSignalEvent } from "../Domain/SignalEvent.js"
import type { Outcome, Result } from "../Domain/Outcome.js"
import { MailjetClient } from "../Mailjet/MailjetClient.js"
import { type Lane, MailjetGateway, MAX_RATE_LIMITED_RETRIES } from "../Mailjet/MailjetGateway.js"
import { MailjetConfig } from "../Mailjet/MailjetConfig.js"
import type { FatalError, MailjetError } from "../Mailjet/MailjetError.js"
import { Mapping } from "../Mapping.js"
import { PropertyTypes } from "../Preset/PropertyTypes.js"
import { Suppressions } from "../Suppressions.js"
import { makeBulk, watchJob } from "./Bulk.js"
import { DeliveryConfig, type DeliverySettings } from "./DeliveryConfig.js"
import { type Fence, type FenceListener, makeFences, unfinishedJobDetail } from "./Fences.js"
import { orderedConcurrently } from "./Lanes.js"
import * as Metrics from "./Metrics.js"
import { Pacer } from "../Mailjet/Pacer.js"
import {
  addRefused,
  applySuppressions,
  demote,
  type Item,
  numbered,
  onlyProperties,
  type Prepared,
  prepare,
  prepareLine,
  resultOf,
  supersededReason,
  tooLong,
  unread,
  withoutRefused,
  withoutText
} from "./Prepare.js"
import { guardReplay } from "./ReplayGuard.js"
import { WindowPack, WindowPackBuilder } from "./WindowPack.js"
import { BulkJobPending, makeRunState, MailjetOutage, runHooks, type RunState, type RunStopped, stopMessage } from "./RunState.js"

/**
 * Windows of one job's worth of events in flight at once: one's POST goes while another's job runs.
 * One more waits for its turn and another is gathered: a backfill holds six or seven windows.
 * Measured (bench, 2 s jobs, 1M events): four in flight, 6,443 events/s; three, 4,465. A window is
 * packed as it is gathered (WindowPack), and its jobs hold a contact's email: live heap stays
 * under 55 MB in the CLI's 128 MB (bin.ts). A budget of events instead cut windows short while
 * their gathering waited for it: half again as many calls, 25% slower.
 */
const BULK_WINDOWS_IN_FLIGHT = 4
/** A window also ends at this much event text, so that windows of larger events fit the heap too. */
const BULK_WINDOW_BYTES = 3 * 1024 * 1024
/**
 * How long a window waits for more events once in bulk: a busy machine that reads a backfill
 * slowly still fills its windows (at 200 ms, measured under load, windows came out half full:
 * half the contacts per call).
 */
const BULK_LINGER = Duration.seconds(1)
/** How long events gather before going out while not in bulk: the delay a quiet source adds. */
const QUIET_LINGER = Duration.millis(20)
/** In `auto`, bulk once more events are waiting than one call each clears in this long. */
export const AUTO_BACKLOG_SECONDS = 5

/** A preset file (else MAILJET_PRESET, else the Default preset), and settings over the environment's. */
export interface DeliveryOptions {
  readonly preset?: Option.Option<string>
  readonly overrides?: Partial<DeliverySettings>
}

export class Delivery extends Context.Tag("signal-mailjet/Delivery")<Delivery, {
  /** One event (a parsed JSON value), for embedding. Only fatal errors fail. */
  readonly deliver: (event: unknown) => Effect.Effect<Outcome, FatalError>
  /** NDJSON lines in, one result per line out, in input order. Never fails on Mailjet's account. */
  readonly run: <E, R>(lines: Stream.Stream<string, E, R>, state?: RunState) => Stream.Stream<Result, E | RunStopped, R>
  /**
   * Any items (Kafka records) in, each with its result, in input order: so whoever commits
   * progress knows that everything before an item is done once the item comes out.
   */
  readonly runTagged: <M, E, R>(
    items: Stream.Stream<M, E, R>,
    read: (m: M) => Item,
    state?: RunState,
    /**
     * What of an item is held while its event waits, and handed back with its result: a caller
     * that needs only the results keeps a backlog's texts off the heap with `withoutText`.
     */
    hold?: (m: M) => M
  ) => Stream.Stream<readonly [M, Result], E | RunStopped, R>
  /**
   * Bulk jobs that may still land, shared between processes (SuppressionTopic does it for `serve`):
   * this process's are told to listeners; another's are fenced here too and watched to their end.
   */
  readonly jobs: {
    readonly observe: (listener: FenceListener) => void
    /** Another process's job, with (some of) its contacts. */
    readonly learn: (job: number, emails: ReadonlyArray<string>) => Effect.Effect<void>
    /** Another process saw the job end. */
    readonly forget: (job: number) => Effect.Effect<void>
  }
}>() {
  /**
   * Needs its parts: `MailjetClient`, `Consent`, `Mapping`, `Pacer`, `DeliveryConfig`, and what
   * preflight provides, `PropertyTypes` and `Suppressions`.
   */
  static readonly layer = Layer.scoped(Delivery, Effect.suspend(() => make))

  /**
   * Every part but `PropertyTypes`, read from the current ConfigProvider, kept in the output. The
   * host brings a `FileSystem` (for a preset file); the client keeps its own connections to Mailjet.
   */
  static readonly parts = (options: DeliveryOptions = {}) =>
    Layer.mergeAll(MailjetClient.layer, Consent.layer, Mapping.layer(options.preset), Pacer.layer).pipe(
      Layer.provideMerge(Layer.mergeAll(MailjetConfig.layer, DeliveryConfig.layerWith(options.overrides ?? {})))
    )

  /** What preflight would provide, for a host that runs none: the preset's datatypes, no suppressions. */
  static readonly withoutPreflight = Layer.merge(
    Layer.effect(PropertyTypes, Effect.map(Mapping, (m) => m.preset.datatypes)),
    Suppressions.layerEmpty
  )

  /** Delivery with every part read from the current ConfigProvider (the environment by default). */
  static readonly live = (options: DeliveryOptions = {}) => Delivery.layer.pipe(Layer.provideMerge(Delivery.withoutPreflight), Layer.provideMerge(Delivery.parts(options)))
}

const make = Effect.gen(function*() {
  const gateway = yield* MailjetGateway.fromContext
  const client = gateway.client
  const consent = yield* Consent
  const mapping = yield* Mapping
  const config = yield* DeliveryConfig
  const datatypes = yield* PropertyTypes
  const suppressions = yield* Suppressions
  // Jobs whose end was not seen are watched for as long as the service lives.
  const scope = yield* Effect.scope
  const fences = makeFences()
  // Interruptible, though forked from a finalizer: the service's end must be able to stop it.
  const watch = (fence: Fence) => Effect.asVoid(Effect.forkIn(Effect.interruptible(watchJob({ gateway, config, fences })(fence)), scope))
  const resubscribe = consent.resubscribe === "explicit"
    ? (p: Extract<Prepared, { _tag: "Send" }>) => applySuppressions(p, suppressions)
    : (p: Extract<Prepared, { _tag: "Send" }>) => p

  /** Sends one request until it is done; fails only with a fatal error. */
  const send = (
    p: Extract<Prepared, { _tag: "Send" }>,
    seq: number,
    state: RunState,
    lane: Lane
  ): Effect.Effect<Outcome, FatalError> =>
    Effect.gen(function*() {
      let attempts = 0
      let failures = 0
      let limited = 0
      let body = p.body
      let partial = p.partial
      // A replay first reads what Mailjet holds, then sends what of it may still apply.
      let guarded = p.replay === undefined
      let superseded: ReadonlyArray<string> = []
      // The gateway's retry schedule, driven here: made at the first failure, most events have none.
      let backoff: Schedule.ScheduleDriver<unknown, unknown> | undefined
      while (true) {
        const stopped = yield* state.stopped
        if (Option.isSome(stopped)) {
          return {
            outcome: "not-attempted",
            reason: stopMessage(stopped.value),
            ...(attempts > 0 ? { attempts } : {})
          } as const
        }
        if (attempts === 0 && !state.admit(seq)) {
          return { outcome: "not-attempted", reason: stopMessage({ _tag: "Shutdown" }) } as const
        }
        // A replay's read is two calls (the list recipient and the contact's data): two slots. A
        // stop during the wait is seen at the top of the loop.
        if (!(yield* gateway.slot(state.onStop, guarded ? 1 : 2))) continue
        let error: MailjetError
        if (!guarded) {
          const read = yield* Effect.either(client.contactState(p.email))
          if (Either.isRight(read)) {
            lane.answered()
            guarded = true
            const g = guardReplay(body, p.eventAt, read.right, p.replay === "properties")
            superseded = g.superseded
            if (g._tag === "Skip") {
              return { outcome: "dropped", reason: supersededReason(superseded, "nothing sent") } as const
            }
            body = g.body
            continue
          }
          error = read.left
        } else {
          // Attempts count what was sent to managecontact; the replay's read is not one.
          attempts++
          const started = yield* Clock.currentTimeMillis
          const result = yield* Effect.either(client.manageContact(body))
          const elapsed = (yield* Clock.currentTimeMillis) - started
          yield* Metrics.requestDuration(Effect.succeed(elapsed))
          yield* Metrics.attempts(Effect.succeed(1))
          if (Either.isRight(result)) {
            lane.answered()
            return {
              outcome: "delivered",
              action: body.Action,
              status: result.right.status,
              attempts,
              ...(partial === undefined ? {} : { partial }),
              ...(superseded.length > 0
                ? { superseded, note: supersededReason(superseded, `sent as ${body.Action}`) }
                : p.note === undefined
                ? {}
                : { note: p.note }),
              ...(p.demoted === undefined ? {} : { demoted: p.demoted })
            } as const
          }
          error = result.left
        }
        switch (error._tag) {
          case "Unauthorized":
          case "ListNotFound":
            return yield* Effect.fail(error)
          case "PropertyMissing":
          case "InvalidContact": {
            lane.answered()
            const rest = withoutRefused(body, error.properties)
            if (rest === undefined) {
              return { outcome: "dead-lettered", error: error._tag, reason: error.message, attempts } as const
            }
            // Only properties were refused: the rest of the update, and its action, still lands in order.
            body = rest
            partial = addRefused(partial, error)
            continue
          }
          case "RateLimited":
            yield* gateway.rateLimited
            if (++limited > MAX_RATE_LIMITED_RETRIES) {
              return {
                outcome: "dead-lettered",
                error: error._tag,
                reason: `still rate limited after ${limited} tries: ${error.message}`,
                attempts
              } as const
            }
            continue
          case "MailjetUnavailable":
            yield* lane.failed(error.detail)
            // Checked before the schedule's own end, so that the last failure is dead-lettered
            // even when the outage it completes stopped the run at the same moment.
            if (++failures >= config.maxAttempts) {
              return {
                outcome: "dead-lettered",
                error: error._tag,
                reason: `gave up after ${failures} attempts: ${error.message}`,
                attempts
              } as const
            }
            yield* Effect.logDebug("retrying").pipe(
              Effect.annotateLogs({ email: Metrics.maskEmail(p.email), attempt: attempts, error: error.detail })
            )
            backoff ??= yield* Schedule.driver(gateway.schedule)
            yield* Effect.raceFirst(Effect.ignore(backoff.next(error)), Effect.asVoid(state.onStop))
        }
      }
    })

  /**
   * Per-contact order: each event waits for the previous event of the same contact. Tickets are
   * taken in the sequential stage, so the chain follows input order; the map holds only contacts
   * with an event in flight. A Deferred is made only when a later event of the same contact has to
   * wait: most events have none, and a Deferred costs a few µs to make. One object per ticket: a
   * window holds one for each of its contacts for as long as its jobs run.
   */
  interface Ticket {
    readonly email: string
    released: boolean
    next: Deferred.Deferred<void> | undefined
    /** The previous event's end, when it had not ended as this one was taken. */
    readonly turn: Deferred.Deferred<void> | undefined
  }
  const tails = new Map<string, Ticket>()
  const takeTicket = (email: string): Ticket => {
    const previous = tails.get(email)
    let turn: Deferred.Deferred<void> | undefined
    if (previous !== undefined && !previous.released) turn = previous.next ??= Deferred.unsafeMake<void>(FiberId.none)
    const mine: Ticket = { email, released: false, next: undefined, turn }
    tails.set(email, mine)
    return mine
  }
  const awaitTurn = (t: Ticket) => t.turn === undefined ? Effect.void : Deferred.await(t.turn)
  const release = (t: Ticket) =>
    Effect.suspend(() => {
      t.released = true
      if (tails.get(t.email) === t) tails.delete(t.email)
      return t.next === undefined ? Effect.void : Deferred.succeed(t.next, undefined)
    })

  const logResult = (r: Result, mapped: string, email: string | undefined, position: Item["position"]) => {
    const o = r.outcome
    const count = Metrics.countOutcome(mapped, o)
    const warning = o.outcome === "dead-lettered"
      ? { message: `dead-lettered: ${o.reason}`, error: o.error }
      : o.outcome === "delivered" && o.partial !== undefined
      ? { message: `delivered without ${o.partial.properties.join(", ")}, dead-lettered on their own: ${o.partial.reason}`, error: o.partial.error }
      : undefined
    if (warning === undefined) return count
    return Effect.zipRight(
      count,
      Effect.logWarning(warning.message).pipe(
        Effect.annotateLogs({
          ...(position === undefined ? { line: r.line } : position),
          event: r.event ?? "?",
          error: warning.error,
          ...(email === undefined ? {} : { email: Metrics.maskEmail(email) })
        })
      )
    )
  }

  /** An item as far as it can be decided without Mailjet, in input order; suppressions are the caller's. */
  const decide = ({ line, only, replay, text, tooLong: bytes, undecodable }: Item): Prepared => {
    const decoded = bytes !== undefined ? tooLong(line, bytes) : undecodable !== undefined
      ? unread(line, "UndecodableBatch", undecodable)
      : prepareLine(text, line, consent.resolve, mapping, datatypes)
    if (decoded._tag === "Done") return decoded
    if (only !== undefined) return onlyProperties(decoded, only)
    return replay === true ? { ...decoded, replay: "event" as const } : decoded
  }

  type Send = Extract<Prepared, { _tag: "Send" }>
  type Ticketed = Send & { readonly seq: number; readonly ticket: Ticket }
  type Done = Extract<Prepared, { _tag: "Done" }>
  /** What a lane settles: one event, or a window of events sent as bulk jobs (Bulk.ts). */
  type Unit<M> =
    | { readonly _tag: "One"; readonly item: M; readonly p: Done | Ticketed }
    | {
      readonly _tag: "Window"
      readonly items: ReadonlyArray<M>
      /** What was decided for each, and their texts, packed while the window waits. */
      readonly pack: WindowPack
      /** Its last event's place in the input: a drain takes or leaves the window whole. */
      readonly last: number
      /** One per contact. */
      readonly tickets: ReadonlyArray<Ticket>
    }

  // In `auto`, a rate that clears a whole window in AUTO_BACKLOG_SECONDS never needs bulk.
  const bulkable = config.bulk === "always" || (config.bulk === "auto" && config.maxRps * AUTO_BACKLOG_SECONDS < config.bulkSize)

  /** Every event read has its result first; then a stop that was not asked for is the run's error. */
  const endOf = (state: RunState) =>
    Stream.drain(Stream.fromEffect(Effect.flatMap(state.stopped, (s): Effect.Effect<void, RunStopped> =>
      Option.isNone(s) || s.value._tag === "Shutdown"
        ? Effect.void
        : Effect.fail(
          s.value._tag === "Fatal"
            ? s.value.error
            : s.value._tag === "JobPending"
            ? new BulkJobPending({ detail: s.value.detail })
            : new MailjetOutage({ detail: s.value.detail })
        ))))

  /** Holds a contact's update back while an earlier bulk job of it may still land; stops the run if it does not end. */
  const fenced = (emails: Iterable<string>, state: RunState) =>
    Effect.suspend(() => {
      const open = fences.of(emails)
      if (open.length === 0) return Effect.void
      return Effect.flatMap(fences.await(open, config.bulkJobTimeout, state.onStop), (stuck) =>
        Option.isNone(stuck)
          ? Effect.void
          : state.stop({ _tag: "JobPending", detail: unfinishedJobDetail(stuck.value, config.bulkJobTimeout) }))
    })

  const runTagged = <M, E, R>(
    items: Stream.Stream<M, E, R>,
    read: (m: M) => Item,
    given?: RunState,
    hold: (m: M) => M = (m) => m
  ): Stream.Stream<readonly [M, Result], E | RunStopped, R> =>
    Stream.unwrap(Effect.gen(function*() {
      const state = given ?? (yield* makeRunState)
      const lane = gateway.lane(runHooks(state))
      let seq = 0
      // Sequential and pure: decisions and per-contact tickets are taken in input order.
      const one = (item: M, prepared: Prepared) =>
        ({
          _tag: "One",
          item,
          p: prepared._tag === "Done" ? prepared : { ...prepared, seq: seq++, ticket: takeTicket(prepared.email) }
        }) as const
      const settle = ({ item, p }: Extract<Unit<M>, { _tag: "One" }>): Effect.Effect<readonly [M, Result]> => {
        if (p._tag === "Done") {
          return Effect.as(logResult(p.result, p.mapped ?? "unmapped", undefined, read(item).position), [item, p.result] as const)
        }
        return awaitTurn(p.ticket).pipe(
          Effect.zipRight(bulkable ? fenced([p.email], state) : Effect.void),
          // Suppressions are read as late as possible: one learnt while the event waited still counts.
          Effect.zipRight(Effect.suspend(() => send(resubscribe(p), p.seq, state, lane))),
          Effect.catchAll((error) =>
            Effect.as(state.stop({ _tag: "Fatal", error }), {
              outcome: "not-attempted",
              error: error._tag,
              reason: error.message
            } as const)
          ),
          Effect.map((o) => [item, resultOf(p, o)] as const),
          Effect.tap(([, r]) => logResult(r, p.mapped, p.email, read(item).position)),
          Effect.ensuring(release(p.ticket))
        )
      }
      if (!bulkable) {
        const ones = Stream.map(items, (item) => one(item, decide(read(item))))
        return Stream.concat(orderedConcurrently(ones, settle, config.concurrency), endOf(state))
      }
      return Stream.concat(windowed(items, read, hold, state, lane, one, settle, (n) => (seq += n) - 1), endOf(state))
    }))

  /** Sends one event on the per-event path; a fatal error stops the run and leaves it not attempted. */
  const sendOne = (state: RunState, lane: Lane) => (p: Send) =>
    // Admitted with its window (-1 is before any cut): a drain does not strand half a window.
    Effect.catchAll(send(p, -1, state, lane), (error) =>
      Effect.as(state.stop({ _tag: "Fatal", error }), {
        outcome: "not-attempted",
        error: error._tag,
        reason: error.message
      } as const))

  /**
   * The bulk-capable path. Events gather while the lanes are busy (a quiet source's for
   * QUIET_LINGER, so it is not held up); a gathering larger than one call per event clears in
   * AUTO_BACKLOG_SECONDS (or any, with `always`) is one window: bulk jobs (Bulk.ts), one unit for
   * the lanes, after the earlier events of its contacts, like an event after the earlier ones of
   * its contact. Anything smaller goes event by event, as with `off`.
   */
  const windowed = <M, E, R>(
    items: Stream.Stream<M, E, R>,
    read: (m: M) => Item,
    hold: (m: M) => M,
    state: RunState,
    lane: Lane,
    one: (item: M, prepared: Prepared) => Extract<Unit<M>, { _tag: "One" }>,
    settle: (u: Extract<Unit<M>, { _tag: "One" }>) => Effect.Effect<readonly [M, Result]>,
    /** Takes the next `n` places in the input; the last of them. */
    claim: (n: number) => number
  ): Stream.Stream<readonly [M, Result], E, R> =>
    Stream.unwrapScoped(Effect.gen(function*() {
      const bulk = makeBulk({ gateway, lane, config, state, sendOne: sendOne(state, lane), fences, watch })
      const threshold = config.maxRps * AUTO_BACKLOG_SECONDS
      let bulkNow = config.bulk === "always"
      const permits = yield* Effect.makeSemaphore(BULK_WINDOWS_IN_FLIGHT)
      // The first gathering waits as long as a window does: a reader that starts slowly (cold code,
      // a file opening) still shows its backlog, rather than sending its first events one by one.
      let first = true
      const linger = Schedule.spaced(QUIET_LINGER).pipe(Schedule.modifyDelay(() => (bulkNow || first ? BULK_LINGER : QUIET_LINGER)))

      const units = ({ items, packing, prepared }: Gathering<M>): Effect.Effect<ReadonlyArray<Unit<M>>> =>
        Effect.gen(function*() {
          first = false
          let sends = packing?.sends ?? 0
          for (const p of prepared) if (p._tag === "Send") sends++
          if (config.bulk === "auto" && sends > 0 && (sends > threshold) !== bulkNow) {
            bulkNow = !bulkNow
            yield* Effect.logInfo(
              bulkNow
                ? `bulk: ${sends} events waiting, more than one call each clears in ${AUTO_BACKLOG_SECONDS} s at ${config.maxRps}/s: sending bulk jobs`
                : `bulk: ${sends} events waiting: back to one call per event`
            )
          }
          if (!bulkNow || sends === 0) {
            const each = packing === undefined ? prepared : packing.finish().unpacked()
            return items.map((item, i) => one(item, each[i]!))
          }
          // Packed before the wait for a permit (as gathered, when in bulk): a window gathered ahead waits small.
          const builder = packing ?? WindowPackBuilder.from(prepared)
          const pack = builder.finish()
          // The stream's fibers keep their last gathering until the next one: it lets go of the unpacked.
          prepared.length = 0
          yield* permits.take(1)
          const tickets: Array<Ticket> = []
          for (const email of builder.emails) tickets.push(takeTicket(email))
          builder.emails.clear()
          return [{ _tag: "Window", items, pack, last: claim(sends), tickets } as const]
        })

      /**
       * A window's updates, suppressions applied in input order, sent (or not) in bulk jobs. Its
       * decisions are read from the pack for the jobs' bodies, and again once the jobs ended: none
       * is held while they run. Only what resubscribing changed is kept between the two reads.
       */
      const sendWindow = (pack: WindowPack, send: boolean): Effect.Effect<{
        readonly prepared: ReadonlyArray<Prepared>
        readonly outcomes?: ReadonlyArray<Outcome>
      }> => {
        const first = pack.decisions()
        // Only a demotion's reason, by the update's place: a backfill demotes a third of a window.
        const demoted = new Map<number, string>()
        const sends: Array<Send> = []
        for (const p of first) {
          if (p._tag !== "Send") continue
          const r = resubscribe(p)
          if (r !== p) demoted.set(sends.length, r.demoted!)
          sends.push(r)
        }
        if (!send) return Effect.succeed({ prepared: first })
        const later = { prepared: [] as ReadonlyArray<Prepared> }
        const again = () => {
          const sends: Array<Send> = []
          for (const p of later.prepared = pack.decisions()) {
            if (p._tag !== "Send") continue
            const reason = demoted.get(sends.length)
            sends.push(reason === undefined ? p : demote(p, reason))
          }
          return sends
        }
        return Effect.map(bulk.window(sends, again), (outcomes) => ({ prepared: later.prepared, outcomes }))
      }

      const settleWindow = (u: Extract<Unit<M>, { _tag: "Window" }>) =>
        Effect.gen(function*() {
          for (const t of u.tickets) yield* awaitTurn(t)
          yield* fenced(u.tickets.map((t) => t.email), state)
          const stopped = yield* state.stopped
          const why = Option.isSome(stopped) ? stopped : state.admit(u.last) ? Option.none() : Option.some({ _tag: "Shutdown" } as const)
          // Suppressions as late as for one event: after the earlier events of the window's contacts.
          const { outcomes, prepared } = yield* sendWindow(u.pack, Option.isNone(why))
          const out: Array<readonly [M, Result]> = []
          let k = 0
          for (let i = 0; i < u.items.length; i++) {
            const item = u.items[i]!
            const p = prepared[i]!
            const r = lazyRaw(
              p._tag === "Done"
                ? p.result
                : resultOf(p, outcomes?.[k++] ?? { outcome: "not-attempted", reason: stopMessage(Option.getOrThrow(why)) }),
              u.pack,
              i
            )
            yield* logResult(r, p.mapped ?? "unmapped", p._tag === "Done" ? undefined : p.email, read(item).position)
            out.push([item, r])
          }
          return out
        }).pipe(Effect.ensuring(Effect.forEach(u.tickets, release, { discard: true })))

      return items.pipe(
        // Gathered events keep their text, not their parsed form (read again only if asked for);
        // in bulk, a window is packed as it is gathered.
        Stream.map((item) => ({ item: hold(item), p: stripRaw(decide(read(item))) })),
        // Not in bulk, no more than it takes to see a backlog: the rest stays unread.
        Stream.aggregateWithin(
          Sink.suspend(() => {
            const most = bulkNow ? config.bulkSize : threshold + 1
            return Sink.fold(
              { items: [], packing: bulkNow ? new WindowPackBuilder() : undefined, prepared: [], bytes: 0 } as Gathering<M>,
              (w) => w.items.length < most && w.bytes < BULK_WINDOW_BYTES,
              (w, { item, p }: { readonly item: M; readonly p: Prepared }) => {
                w.items.push(item)
                w.bytes += (p._tag === "Send" ? p.text : p.result.text)?.length ?? 0
                if (w.packing === undefined) w.prepared.push(p)
                else w.packing.add(p)
                return w
              }
            )
          }),
          linger
        ),
        Stream.mapEffect(units),
        Stream.flattenIterables,
        (s) =>
          orderedConcurrently(s, (u: Unit<M>) =>
            u._tag === "One"
              ? Effect.map(settle(u), ([item, r]) => ({ out: [[item, lazyRaw(r)] as const], window: false }))
              : Effect.map(settleWindow(u), (out) => ({ out, window: true })), config.concurrency),
        // A window's permit is back once its lines are out, not when its jobs end: the lanes may hold it longer.
        Stream.tap(({ window }) => (window ? permits.release(1) : Effect.void)),
        Stream.mapConcat(({ out }) => out)
      )
    }))

  const deliver = (raw: unknown): Effect.Effect<Outcome, FatalError> =>
    Effect.gen(function*() {
      const state = yield* makeRunState
      const p = prepare(
        { line: 1, raw, event: decodeSignalEvent(raw) },
        consent.resolve,
        mapping.preset,
        mapping.map,
        datatypes
      )
      if (p._tag === "Done") return p.result.outcome
      const ticket = takeTicket(p.email)
      return yield* awaitTurn(ticket).pipe(
        Effect.zipRight(Effect.suspend(() => send(resubscribe(p), 0, state, gateway.lane(runHooks(state))))),
        Effect.ensuring(release(ticket))
      )
    })

  const run = <E, R>(lines: Stream.Stream<string, E, R>, given?: RunState): Stream.Stream<Result, E | RunStopped, R> =>
    Stream.map(runTagged(numbered(lines), (x) => x, given, withoutText), ([, r]) => r)

  const jobs = {
    observe: fences.observe,
    learn: (job: number, emails: ReadonlyArray<string>) =>
      Effect.suspend(() => Option.match(fences.learn(job, emails), { onNone: () => Effect.void, onSome: watch })),
    forget: fences.forget
  }

  return Delivery.of({ deliver, run, runTagged, jobs })
})

/**
 * Events gathered for a window, and what was decided for each: packed as they come while in bulk,
 * else as they are (a gathering then is a few events, sent one by one unless it shows a backlog).
 */
interface Gathering<M> {
  readonly items: Array<M>
  readonly packing: WindowPackBuilder | undefined
  readonly prepared: Array<Prepared>
  bytes: number
}

/** A prepared update without its parsed event, while it has its text to read it again from. */
const stripRaw = (p: Prepared): Prepared => p._tag === "Send" && p.text !== undefined && p.raw !== undefined ? { ...p, raw: undefined } : p

/**
 * A result whose text (from a window's pack) and parsed event are read again when someone asks for
 * them. The getters are the prototype's: thousands of results of a window wait to be written.
 */
class LazyRaw implements Result {
  #raw: unknown = undefined
  readonly #source: string | WindowPack
  readonly #index: number
  constructor(
    readonly line: number,
    source: string | WindowPack,
    index: number,
    readonly messageId: string | undefined,
    readonly event: string | undefined,
    readonly outcome: Outcome
  ) {
    this.#source = source
    this.#index = index
  }
  get text(): string | undefined {
    return typeof this.#source === "string" ? this.#source : this.#source.text(this.#index)
  }
  get raw(): unknown {
    if (this.#raw !== undefined) return this.#raw
    const text = this.text
    return this.#raw = text === undefined ? undefined : JSON.parse(text)
  }
}
/** A result that gave up its parsed event (and, in a window, its text): read again on demand. */
const lazyRaw = (r: Result, pack?: WindowPack, index = 0): Result =>
  r.raw !== undefined
    ? r
    : r.text !== undefined
    ? new LazyRaw(r.line, r.text, 0, r.messageId, r.event, r.outcome)
    : pack === undefined
    ? r
    : new LazyRaw(r.line, pack, index, r.messageId, r.event, r.outcome)
