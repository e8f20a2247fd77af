/**
 * The engine as a service: `deliver(event)` for one event, `run(lines)` for NDJSON, `runTagged`
 * for Kafka records, `jobs` for bulk jobs shared between processes. Its implementation is under
 * src/internal/ (engine.ts and the files it names); this module is the public face and its layers.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import { Consent } from "../Consent.js"
import { makeEngine, type DeliveryService } from "../internal/engine.js"
import { MailjetClient } from "../Mailjet/MailjetClient.js"
import { MailjetConfig } from "../Mailjet/MailjetConfig.js"
import { Pacer } from "../Mailjet/Pacer.js"
import { Mapping } from "../Mapping.js"
import { PropertyTypes } from "../Preset/PropertyTypes.js"
import { Suppressions } from "../Suppressions.js"
import { DeliveryConfig, type DeliverySettings } from "./DeliveryConfig.js"

export { AUTO_BACKLOG_SECONDS } from "../internal/windowed.js"
export type { DeliveryService } from "../internal/engine.js"

/** A preset file (else MAILJET_PRESET, else the Default preset), and settings over the environment's. */
export interface DeliveryOptions {
  readonly preset?: Option.Option<string>
  readonly overrides?: Partial<DeliverySettings>
}

export class Delivery extends Context.Tag("signal-mailjet/Delivery")<Delivery, DeliveryService>() {
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

const make = makeEngine
