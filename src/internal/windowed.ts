/**
 * The bulk-capable path (MAILJET_BULK). Events gather while the lanes are busy; a gathering that
 * shows a backlog is one window, sent as bulk jobs (bulkSettle.ts) as one unit for the lanes, after the
 * earlier events of its contacts; anything smaller goes event by event, as with `off`.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Outcome, Result } from "../Domain/Outcome.js"
import type { DeliverySettings } from "../Delivery/DeliveryConfig.js"
import { orderedConcurrently } from "../Delivery/Lanes.js"
import { demote, type Item, type PackedSend, type Prepared } from "../Delivery/Prepare.js"
import { type RunState, stopMessage } from "../Delivery/RunState.js"
import type { WindowPack } from "../Delivery/WindowPack.js"
import { WindowPackBuilder } from "../Delivery/WindowPackBuilder.js"
import type { WindowContacts } from "./bulkPlan.js"
import type { OutcomeOf } from "./bulkSettle.js"
import { gathered } from "./gathered.js"
import { HeldItemsBuilder, HeldReasons } from "./heldItems.js"
import { eventsForHeap, jobsForBudget, type Load, makeGate, SPILLED_EVENT_BYTES } from "./inFlight.js"
import type { Order } from "./order.js"
import { lazyRaw, stripRaw, type Unit } from "./results.js"
import type { Send } from "./send.js"
import { type LinePieces, linesOut, type Settled as Made, windowLines } from "./windowLines.js"

/**
 * A window ends once one action's job is full (`bulkSize` contacts) or at this much event text. Its
 * jobs' bodies are built at its turn, one window at a time (`turns`). At 3 MB the bench's windows
 * carried about 1,700 contacts a job and the call budget's jobs bound the events in flight before
 * memory; at 4 MB, about 3,000 and memory binds; at 8 MB (three actions' jobs of 5,000) the
 * backfill with 30 s jobs peaked at 153 to 166 MB, at 4 MB 143 (BENCHMARKS.md, "Long jobs").
 */
const BULK_WINDOW_BYTES = 4 * 1024 * 1024
/**
 * How long a window waits for more events once in bulk: a busy machine that reads a backfill
 * slowly still fills its windows (at 200 ms, measured under load, windows came out half full:
 * half the contacts per call). A window is up to three actions' jobs now: at 1 s, under load,
 * 2 s jobs' windows held about 1,700 contacts a job; the gathering waits while the windows in
 * flight are full anyway.
 */
const BULK_LINGER = Duration.seconds(3)
/** The first gathering's: long enough for a reader that starts slowly to show its backlog. */
const FIRST_LINGER = Duration.seconds(1)
/** How long events gather before going out while not in bulk: the delay a quiet source adds. */
const QUIET_LINGER = Duration.millis(20)
/** In `auto`, bulk once more events are waiting than one call each clears in this long. */
export const AUTO_BACKLOG_SECONDS = 5

/** What the window path needs of the engine. */
export interface WindowEngine {
  readonly config: DeliverySettings
  readonly order: Order
  /** An item as far as it can be decided without Mailjet. */
  readonly decide: (item: Item) => Prepared
  /** Suppressions applied, as late as possible. */
  readonly resubscribe: <S extends PackedSend>(p: S) => S
  /** Done once the list's view of who is unsubscribed is whole (Mailjet/SuppressionSnapshot.ts). */
  readonly whole: Effect.Effect<void>
  /** A run's bulk jobs: the outcome of each of a window's updates, in their order. */
  readonly bulk: (state: RunState) => {
    readonly window: (sends: Iterable<PackedSend>, contacts: WindowContacts, again: () => ReadonlyArray<Send>, posted: () => void) => Effect.Effect<OutcomeOf>
  }
}

/** One run of it: its state, how its items are read, and the per-event path for what is not a window. */
export interface WindowRun<M> {
  readonly state: RunState
  readonly read: (m: M) => Item
  readonly hold: (m: M) => M
  readonly one: (item: M, prepared: Prepared) => Extract<Unit<M>, { _tag: "One" }>
  readonly settle: (u: Extract<Unit<M>, { _tag: "One" }>) => Effect.Effect<readonly [M, Result]>
  /** Takes the next `n` places in the input; the last of them. */
  readonly claim: (n: number) => number
}

/**
 * Events gathered for a window, and what was decided for each: packed as they come while in bulk,
 * else as they are (a gathering then is a few events, sent one by one unless it shows a backlog).
 */
interface Gathering<M> {
  readonly items: HeldItemsBuilder<M>
  readonly packing: WindowPackBuilder | undefined
  readonly prepared: Array<Prepared>
  bytes: number
  /** Contacts new to the window, by the action decided for their event: a window fills each action's job. */
  readonly contacts: Map<string, number>
  /** The most contacts of any one action. */
  fullest: number
}

/** A window on its way: its settling forked as it starts, so that windows in flight are not bounded by the lanes. */
interface Forked<M> {
  readonly _tag: "Forked"
  readonly fiber: Fiber.Fiber<LinePieces<M>>
  readonly id: number
  readonly load: Load
}

/** The contacts a window sends to, read a piece at a time. */
const emailsOf = function*(pack: WindowPack) {
  for (const p of pack.each()) if (p._tag === "Send") yield p.email
}
/**
 * A window's updates, suppressions applied in input order; a demotion's reason kept by the
 * update's place. Not a closure of the window's: V8 compiled a generator made per window, and its
 * readers, again for every window.
 */
function* resubscribed(pack: WindowPack, resubscribe: WindowEngine["resubscribe"], demoted: HeldReasons): Generator<PackedSend> {
  let k = 0
  for (const p of pack.each()) {
    if (p._tag !== "Send") continue
    const r = resubscribe(p)
    if (r !== p && r.demoted !== undefined) demoted.add(k, r.demoted)
    k++
    yield r
  }
  demoted.seal()
}
/** The window's `k`th update as it was sent: demoted, if resubscribing demoted it. */
const asSent = <S extends PackedSend>(p: S, k: number, demoted: HeldReasons) => {
  const reason = demoted.get(k)
  return reason === undefined ? p : demote(p, reason)
}
/** A window's outcomes with its demotions' reasons on their updates. A class: see JobOutcomes. */
class Demoted implements OutcomeOf {
  constructor(private readonly jobs: OutcomeOf, private readonly demoted: HeldReasons) {}
  of(p: PackedSend, k: number): Outcome {
    return this.jobs.of(asSent(p, k, this.demoted), k)
  }
}
type One<M> = Extract<Unit<M>, { _tag: "One" }>
type Settled<M> = Made<M> & { readonly window: Forked<M> | undefined }

/** Jobs a window will take: one per action, per `bulkSize` contacts (folding may move a contact between actions). */
const jobsOf = (contacts: ReadonlyMap<string, number>, bulkSize: number) =>
  Math.max(1, [...contacts.values()].reduce((jobs, n) => jobs + Math.ceil(n / bulkSize), 0))

/**
 * The bulk-capable path. Events gather while the lanes are busy (a quiet source's for
 * QUIET_LINGER, so it is not held up); a gathering larger than one call per event clears in
 * AUTO_BACKLOG_SECONDS (or any, with `always`) is one window: bulk jobs (bulkSettle.ts), one unit for
 * the lanes, after the earlier events of its contacts, like an event after the earlier ones of
 * its contact. Anything smaller goes event by event, as with `off`.
 */
export const windowed = <M, E, R>(
  engine: WindowEngine,
  run: WindowRun<M>,
  items: Stream.Stream<M, E, R>
): Stream.Stream<readonly [M, Result], E, R> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const { config, decide, order, resubscribe } = engine
    const { claim, hold, one, read, settle, state } = run
    const bulk = engine.bulk(state)
    const threshold = config.maxRps * AUTO_BACKLOG_SECONDS
    let bulkNow = config.bulk === "always"
    const scope = yield* Effect.scope
    const turns = yield* Effect.makeSemaphore(1)
    // A window's pack waits in its file (WindowPack `spill`); one that could not be written costs
    // about 90 B an event more, within the heap's other half.
    const heapEvents = eventsForHeap(undefined, SPILLED_EVENT_BYTES)
    const gate = makeGate((now) => ({ events: heapEvents, jobs: jobsForBudget(config.maxRps, gate.life(now)) }))
    // The first gathering waits FIRST_LINGER: a reader that starts slowly (cold code,
    // a file opening) still shows its backlog, rather than sending its first events one by one.
    let first = true

    const units = ({ contacts, items, packing, prepared }: Gathering<M>): Effect.Effect<ReadonlyArray<One<M> | Forked<M>>> =>
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
          const out: Array<One<M>> = []
          for (let i = 0; i < each.length; i++) out.push(one(items.at(i), each[i]!))
          return out
        }
        // Packed before the wait for a permit (as gathered, when in bulk): a window gathered ahead waits small.
        const builder = packing ?? WindowPackBuilder.from(prepared)
        const pack = builder.finish()
        // In a file while it waits and its jobs run: read back when the window's results are made.
        pack.spill()
        // The stream's fibers keep their last gathering until the next one: it lets go of the unpacked.
        prepared.length = 0
        const load: Load = { events: items.length, jobs: jobsOf(contacts, config.bulkSize) }
        const held = items.hold()
        const id = yield* gate.admit(load)
        const ticket = order.takeWindow(builder.emails.contactHashes())
        builder.emails.clear()
        const fiber = yield* Effect.forkIn(settleWindow({ _tag: "Window", items: held, pack, last: claim(sends), ticket }), scope)
        return [{ _tag: "Forked", fiber, id, load } as const]
      })

    /**
     * A window's updates, suppressions applied in input order, sent (or not) in bulk jobs. Its
     * decisions are read a piece at a time, for its jobs' bodies (kept until posted) and for its
     * lines: none is held while its jobs run, only what resubscribing changed.
     */
    const sendWindow = (pack: WindowPack, send: boolean, posted: () => void): Effect.Effect<OutcomeOf | undefined> => {
      // Only a demotion's reason, by the update's place: a backfill demotes a third of a window.
      const demoted = new HeldReasons()
      const sends = () => resubscribed(pack, resubscribe, demoted)
      if (!send) {
        // Not sent, but resubscribed all the same: the run's own unsubscribes count for later windows.
        for (const _ of sends()) void _
        posted()
        return Effect.succeed(undefined)
      }
      const whole = () => {
        const out: Array<Send> = []
        for (const p of pack.decisions()) if (p._tag === "Send") out.push(asSent(p, out.length, demoted))
        return out
      }
      return Effect.map(bulk.window(sends(), pack.contacts(), whole, posted), (jobs) => new Demoted(jobs, demoted))
    }

    const settleWindow = (u: Extract<Unit<M>, { _tag: "Window" }>) =>
      Effect.gen(function*() {
        yield* order.windowTurn(u.ticket)
        // Its standing consent needs the list's whole view: cheaper to wait for than to ask per contact.
        yield* Effect.raceFirst(engine.whole, Effect.asVoid(state.onStop))
        // Its contacts read from the pack (the ticket holds them as hashes) only while a job is fenced.
        yield* order.fenced(emailsOf(u.pack), state)
        const stopped = yield* state.stopped
        const why = Option.isSome(stopped) ? stopped : state.admit(u.last) ? Option.none() : Option.some({ _tag: "Shutdown" } as const)
        // One window at a time from reading its decisions to its jobs posted: short jobs turn several
        // windows at once (a 400,000-event backfill with 2 s jobs peaked at 156 MB with windows of
        // 6 MB). Suppressions as late as for one event: after the earlier events of its contacts.
        const sending = yield* turns.withPermits(1)(Effect.gen(function*() {
          const posted = yield* Deferred.make<void>()
          const fiber = yield* Effect.fork(Effect.suspend(() => sendWindow(u.pack, Option.isNone(why), () => Deferred.unsafeDone(posted, Exit.void))))
          yield* Effect.raceFirst(Deferred.await(posted), Fiber.await(fiber))
          return fiber
        }))
        const outcomeOf = yield* Fiber.join(sending)
        const notAttempted: Outcome | undefined = Option.isSome(why) ? { outcome: "not-attempted", reason: stopMessage(why.value) } : undefined
        const labels = yield* FiberRef.get(FiberRef.currentMetricLabels)
        // Its lines are made when they are next to be written, not as its jobs end: windows that
        // ended behind a late one held theirs meanwhile (one late poll, ten windows' lines).
        return windowLines({ pack: u.pack, items: u.items, read, outcomeOf, notAttempted, labels })
      }).pipe(Effect.ensuring(Effect.zipRight(Effect.sync(() => u.pack.keep()), order.releaseWindow(u.ticket))))

    return gathered(items, {
      // In bulk (as it starts), packed as gathered.
      make: (): Gathering<M> => ({ items: new HeldItemsBuilder(), packing: bulkNow ? new WindowPackBuilder() : undefined, prepared: [], bytes: 0, contacts: new Map(), fullest: 0 }),
      // Decided as gathered (a chunk decided ahead outlived the young generation); kept as
      // text, not parsed (read again only if asked for); in bulk, packed as they are gathered.
      add: (w, input) => {
        const p = decide(read(input))
        w.items.push(hold(input))
        w.bytes += (p._tag === "Send" ? p.text : p.result.text)?.length ?? 0
        // Packed, its parsed form dies young; kept unpacked, only its text is kept, not the parse.
        let fresh = true
        if (w.packing === undefined) w.prepared.push(stripRaw(p))
        else fresh = w.packing.add(p)
        // Contacts by action: unpacked, each update counts as one.
        if (fresh && p._tag === "Send") {
          const n = (w.contacts.get(p.body.Action) ?? 0) + 1
          w.contacts.set(p.body.Action, n)
          if (n > w.fullest) w.fullest = n
        }
        // In bulk, full once one action's job is (bulkSize contacts); else once it shows a
        // backlog, no more: the rest stays unread.
        return (w.packing !== undefined ? w.fullest >= config.bulkSize : w.items.length > threshold) || w.bytes >= BULK_WINDOW_BYTES
      },
      linger: () => (bulkNow ? BULK_LINGER : first ? FIRST_LINGER : QUIET_LINGER)
    }).pipe(
      Stream.mapEffect(units),
      Stream.flattenIterables,
      (s) =>
        orderedConcurrently(s, (u: One<M> | Forked<M>): Effect.Effect<Settled<M>> =>
          u._tag === "One"
            ? Effect.map(settle(u), ([item, r]) => ({ out: [[item, lazyRaw(r)] as const], window: undefined }))
            : Effect.map(Fiber.join(u.fiber), (lines) => ({ out: lines, window: u })), config.concurrency),
      // A window leaves the gate once its lines are out, not when its jobs end: it is held until then.
      Stream.tap(({ window }) => (window === undefined ? Effect.void : gate.leave(window.id, window.load))),
      // A chunk at a time, not an Effect an event; a window's lines a piece at a time, in turn.
      Stream.pipeThroughChannel(linesOut())
    )
  }))
