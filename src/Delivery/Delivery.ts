/**
 * The engine as a service: `deliver(event)` for one event, `run(lines)` for NDJSON, `runTagged`
 * for Kafka records, `jobs` for bulk jobs shared between processes. Its implementation is under
 * src/internal/ (engine.ts and the files it names); this module is the public face and its layers.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { makeEngine, type DeliveryService } from "../internal/engine.js"
import * as Stack from "./Stack.js"
import type { DeliveryOptions } from "./Stack.js"

export { AUTO_BACKLOG_SECONDS } from "../internal/windowed.js"
export type { DeliveryService } from "../internal/engine.js"

/** `Delivery.live`'s options: defined beside the stacks (Stack.ts), which cannot import this module. */
export type { DeliveryOptions } from "./Stack.js"

export class Delivery extends Context.Tag("signal-mailjet/Delivery")<Delivery, DeliveryService>() {
  /**
   * Needs its parts: `MailjetClient`, `Consent`, `Mapping`, `Pacer`, `DeliveryConfig`, and what
   * preflight provides, `PropertyTypes` and `Suppressions`. Stack.ts composes them for every use.
   */
  static readonly layer = Layer.scoped(Delivery, Effect.suspend(() => makeEngine))

  /**
   * Every part but `PropertyTypes`, read from the current ConfigProvider, kept in the output. The
   * host brings a `FileSystem` (for a preset file); the client keeps its own connections to Mailjet.
   */
  static readonly parts = Stack.configuredParts

  /**
   * What preflight would provide, for a host that runs none: the preset's datatypes, no
   * suppressions, so standing consent re-subscribes whoever unsubscribed in Mailjet. Kept for hosts
   * that compose their own stack; `Delivery.live()` is the safe one.
   */
  static readonly withoutPreflight = Stack.withoutPreflight

  /**
   * Delivery with every part read from the current ConfigProvider (the environment by default).
   * Preflight runs while the layer is built, as `deliver`'s does: the list's unsubscribed contacts
   * are read, so standing consent does not re-subscribe them. To skip it, say what it risks:
   * `Delivery.live({ preflight: "skip-and-risk-resubscribing" })`.
   */
  static readonly live = (options: DeliveryOptions = {}) => Stack.embeddedStack(Delivery.layer, options)
}
