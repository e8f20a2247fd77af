/**
 * The bulk-capable path (MAILJET_BULK). Events gather while the lanes are busy; a gathering that
 * shows a backlog is one window, sent as bulk jobs (bulkSettle.ts) as one unit for the lanes, after the
 * earlier events of its contacts; anything smaller goes event by event, as with `off`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import type { Outcome, Result } from "../Domain/Outcome.js"
import type { DeliverySettings } from "../Delivery/DeliveryConfig.js"
import { orderedConcurrently } from "../Delivery/Lanes.js"
import { demote, type Item, type Prepared, resultOf } from "../Delivery/Prepare.js"
import { type RunState, stopMessage } from "../Delivery/RunState.js"
import { type WindowPack, WindowPackBuilder } from "../Delivery/WindowPack.js"
import { HeldReasons, holdItems } from "./heldItems.js"
import { eventsForHeap, jobsForBudget, type Load, makeGate, SPILLED_EVENT_BYTES } from "./inFlight.js"
import type { Order } from "./order.js"
import { lazyRaw, logResultNow, stripRaw, type Unit } from "./results.js"
import type { Send } from "./send.js"

/**
 * A window ends at this much event text, whatever its jobs' room: its decisions are all read back
 * at its turn (for its jobs' bodies), and with short jobs several windows turn at once, so this
 * bounds the peak heap. At 6 MB a 400,000-event backfill with 2 s jobs peaked at 156 MB of RSS, at
 * 10 MB one with 30 s jobs at 167 MB; at 3 MB, 135 and 140 MB (BENCHMARKS.md, "Long jobs").
 */
const BULK_WINDOW_BYTES = 3 * 1024 * 1024
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
  readonly resubscribe: (p: Send) => Send
  /** Done once the list's view of who is unsubscribed is whole (Mailjet/SuppressionSnapshot.ts). */
  readonly whole: Effect.Effect<void>
  /** A run's bulk jobs: the outcome of each of a window's updates, in their order. */
  readonly bulk: (state: RunState) => {
    readonly window: (sends: ReadonlyArray<Send>, again: () => ReadonlyArray<Send>) => Effect.Effect<ReadonlyArray<Outcome>>
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
  readonly items: Array<M>
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
  readonly fiber: Fiber.Fiber<ReadonlyArray<readonly [M, Result]>>
  readonly id: number
  readonly load: Load
}

type One<M> = Extract<Unit<M>, { _tag: "One" }>
type Settled<M> = { readonly out: ReadonlyArray<readonly [M, Result]>; readonly window: Forked<M> | undefined }

/** The contacts a window sends to. */
const emailsOf = function*(decisions: ReadonlyArray<Prepared>) {
  for (const p of decisions) if (p._tag === "Send") yield p.email
}

/** Jobs a window will take: one per action, per `bulkSize` contacts (folding may move a contact between actions). */
const jobsOf = (contacts: ReadonlyMap<string, number>, bulkSize: number) => {
  let jobs = 0
  for (const n of contacts.values()) jobs += Math.ceil(n / bulkSize)
  return Math.max(1, jobs)
}


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
    // A window's pack waits in its file (WindowPack `spill`); one that could not be written costs
    // about 90 B an event more, within the heap's other half.
    const heapEvents = eventsForHeap(undefined, SPILLED_EVENT_BYTES)
    const gate = makeGate((now) => ({ events: heapEvents, jobs: jobsForBudget(config.maxRps, gate.life(now)) }))
    // The first gathering waits FIRST_LINGER: a reader that starts slowly (cold code,
    // a file opening) still shows its backlog, rather than sending its first events one by one.
    let first = true
    const linger = Schedule.spaced(QUIET_LINGER).pipe(Schedule.modifyDelay(() => (bulkNow ? BULK_LINGER : first ? FIRST_LINGER : QUIET_LINGER)))

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
          return items.map((item, i) => one(item, each[i]!))
        }
        // Packed before the wait for a permit (as gathered, when in bulk): a window gathered ahead waits small.
        const builder = packing ?? WindowPackBuilder.from(prepared)
        const pack = builder.finish()
        // In a file while it waits and its jobs run: read back when the window's results are made.
        pack.spill()
        // The stream's fibers keep their last gathering until the next one: it lets go of the unpacked.
        prepared.length = 0
        const load: Load = { events: items.length, jobs: jobsOf(contacts, config.bulkSize) }
        const id = yield* gate.admit(load)
        const ticket = order.takeWindow(builder.emails)
        builder.emails.clear()
        const fiber = yield* Effect.forkIn(settleWindow({ _tag: "Window", items: holdItems(items), pack, last: claim(sends), ticket }), scope)
        return [{ _tag: "Forked", fiber, id, load } as const]
      })

    /**
     * A window's updates, suppressions applied in input order, sent (or not) in bulk jobs. Its
     * decisions are read from the pack for the jobs' bodies, and again once the jobs ended: none
     * is held while they run. Only what resubscribing changed is kept between the two reads.
     */
    const sendWindow = (pack: WindowPack, first: ReadonlyArray<Prepared>, send: boolean): Effect.Effect<{
      readonly prepared: ReadonlyArray<Prepared>
      readonly outcomes?: ReadonlyArray<Outcome>
    }> => {
      // Only a demotion's reason, by the update's place: a backfill demotes a third of a window.
      const demoted = new HeldReasons()
      const sends: Array<Send> = []
      for (const p of first) {
        if (p._tag !== "Send") continue
        const r = resubscribe(p)
        if (r !== p && r.demoted !== undefined) demoted.add(sends.length, r.demoted)
        sends.push(r)
      }
      demoted.seal()
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
        yield* order.windowTurn(u.ticket)
        // Its standing consent needs the list's whole view: cheaper to wait for than to ask per contact.
        yield* Effect.raceFirst(engine.whole, Effect.asVoid(state.onStop))
        // Read from the pack once it is the window's turn (the ticket holds its contacts as hashes),
        // and let go before the jobs run: the generator keeps its variables while it waits.
        let first: ReadonlyArray<Prepared> | undefined = u.pack.decisions()
        yield* order.fenced(emailsOf(first), state)
        const stopped = yield* state.stopped
        const why = Option.isSome(stopped) ? stopped : state.admit(u.last) ? Option.none() : Option.some({ _tag: "Shutdown" } as const)
        // Suppressions as late as for one event: after the earlier events of the window's contacts.
        const sending = sendWindow(u.pack, first, Option.isNone(why))
        first = undefined
        const { outcomes, prepared } = yield* sending
        const labels = yield* FiberRef.get(FiberRef.currentMetricLabels)
        const out: Array<readonly [M, Result]> = []
        let k = 0
        for (let i = 0; i < u.items.length; i++) {
          const item = u.items.at(i)
          const p = prepared[i]!
          const r = lazyRaw(
            p._tag === "Done"
              ? p.result
              : resultOf(p, outcomes?.[k++] ?? { outcome: "not-attempted", reason: stopMessage(Option.getOrThrow(why)) }),
            u.pack,
            i
          )
          // Counted now, not an Effect an event: a window's results are thousands at once.
          const warning = logResultNow(r, p.mapped ?? "unmapped", p._tag === "Done" ? undefined : p.email, read(item).position, labels)
          if (warning !== undefined) yield* warning
          out.push([item, r])
        }
        return out
      }).pipe(Effect.ensuring(Effect.zipRight(Effect.sync(() => u.pack.keep()), order.releaseWindow(u.ticket))))

    return items.pipe(
      // Gathered events keep their text, not their parsed form (read again only if asked for);
      // in bulk, a window is packed as it is gathered.
      Stream.map((item) => ({ item: hold(item), p: stripRaw(decide(read(item))) })),
      // Not in bulk, no more than it takes to see a backlog: the rest stays unread.
      Stream.aggregateWithin(
        Sink.suspend(() => {
          const most = bulkNow ? config.bulkSize : threshold + 1
          return Sink.fold(
            { items: [], packing: bulkNow ? new WindowPackBuilder() : undefined, prepared: [], bytes: 0, contacts: new Map(), fullest: 0 } as Gathering<M>,
            // In bulk, full once one action's job is: contacts in jobs of bulkSize each, per action.
            (w) => (bulkNow ? w.fullest : w.items.length) < most && w.bytes < BULK_WINDOW_BYTES,
            (w, { item, p }: { readonly item: M; readonly p: Prepared }) => {
              w.items.push(item)
              w.bytes += (p._tag === "Send" ? p.text : p.result.text)?.length ?? 0
              if (p._tag === "Send" && !(w.packing?.emails.has(p.email) ?? false)) {
                const n = (w.contacts.get(p.body.Action) ?? 0) + 1
                w.contacts.set(p.body.Action, n)
                if (n > w.fullest) w.fullest = n
              }
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
        orderedConcurrently(s, (u: One<M> | Forked<M>): Effect.Effect<Settled<M>> =>
          u._tag === "One"
            ? Effect.map(settle(u), ([item, r]) => ({ out: [[item, lazyRaw(r)] as const], window: undefined }))
            : Effect.map(Fiber.join(u.fiber), (out) => ({ out, window: u })), config.concurrency),
      // A window leaves the gate once its lines are out, not when its jobs end: it is held until then.
      Stream.tap(({ window }) => (window === undefined ? Effect.void : gate.leave(window.id, window.load))),
      Stream.mapConcat(({ out }) => out)
    )
  }))
