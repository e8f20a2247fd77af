/** What the bench's processes say to each other over their IPC channels. */
import type { SimulatorFaults } from "../../src/Simulator/Simulator.js"

export interface SimulatorSetup {
  readonly keyPath: string
  readonly certPath: string
  readonly apiKey: string
  readonly secretKey: string
  readonly listId: number
  readonly faults: SimulatorFaults
  /** The throughput runs' stand-in: a fixed 201 for managecontact, the simulator behind it for the rest. */
  readonly standIn?: boolean
  /** A large list held from the start (and again after each reset). */
  readonly seedContacts?: { readonly count: number; readonly unsubscribedRatio: number }
}

/** Counters since the last reset. */
export interface SimulatorStats {
  readonly byStatus: Readonly<Record<string, number>>
  /** TLS connections accepted. */
  readonly connections: number
  readonly contacts: number
  /** Wall-clock ms of the first and last 2xx reply to managecontact (0 when none). */
  readonly firstOkAt: number
  readonly lastOkAt: number
  /** Wall-clock ms of the first 100 429 replies. */
  readonly tooManyAt: ReadonlyArray<number>
  /** CPU time the simulator process used, in ms. */
  readonly cpuMs: number
}

export type ToSimulator = { readonly type: "reset" } | { readonly type: "stats" } | { readonly type: "stop" }
export type FromSimulator =
  | { readonly type: "ready"; readonly port: number }
  | { readonly type: "reset-done" }
  | { readonly type: "stats"; readonly stats: SimulatorStats }

export type ContenderKind = "undici" | "node-mailjet" | "node-mailjet-no-keepalive" | "delivery" | "mapping"

export interface ContenderSetup {
  readonly kind: ContenderKind
  readonly url: string
  readonly apiKey: string
  readonly secretKey: string
  readonly listId: number
  readonly eventsPath: string
  readonly warmupPath: string
  readonly concurrency: number
}

export interface ContenderResult {
  readonly events: number
  /** Answered 2xx (or, for mapping, prepared to be sent). */
  readonly ok: number
  readonly failed: number
  readonly seconds: number
  /** CPU time of the contender process during the timed part, in ms. */
  readonly cpuMs: number
  /** The contender process's peak RSS (warm-up included), in kB. */
  readonly maxRssKb: number
}

export type ToContender = { readonly type: "go" }
export type FromContender =
  | { readonly type: "warm" }
  | { readonly type: "result"; readonly result: ContenderResult }
  | { readonly type: "error"; readonly message: string }
