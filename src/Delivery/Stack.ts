/**
 * Every delivery stack, composed here once. `deliver` and `replay` (Cli/RunLines), `serve`
 * (Cli/ServeCommand), an embedding host (`Delivery.live`), the demo and the tests differ only in
 * where their parts come from, whether preflight runs and how patiently, and what the worker adds
 * around it. The order of the layers is the same for all, and with it what the consent guarantee
 * rests on: the engine reads the suppressions and datatypes that preflight (or its named opt-out)
 * provides.
 *
 * The engine comes in as an argument: `Delivery.live` is built here, so this module must not import
 * Delivery.ts.
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import { Consent } from "../Consent.js"
import { MailjetClient } from "../Mailjet/MailjetClient.js"
import { MailjetConfig } from "../Mailjet/MailjetConfig.js"
import {
  type MissingProperties,
  Preflight,
  type PreflightError,
  type PreflightOptions,
  type PropertiesMissing
} from "../Mailjet/Preflight.js"
import { Mapping } from "../Mapping.js"
import { DefaultPreset, type Preset } from "../Preset/Preset.js"
import { PropertyTypes } from "../Preset/PropertyTypes.js"
import { Suppressions } from "../Suppressions.js"
import { DeliveryConfig, type DeliverySettings } from "./DeliveryConfig.js"
import { Pacer } from "../Mailjet/Pacer.js"
import { SuppressionSnapshot } from "../Mailjet/SuppressionSnapshot.js"

/**
 * Preflight skipped, by name: without it no suppressions are read, so standing consent re-subscribes
 * whoever unsubscribed in Mailjet, and values are fitted to the preset's datatypes, not Mailjet's.
 */
export const SKIP_PREFLIGHT = "skip-and-risk-resubscribing"

/** Run preflight (what to do about missing properties, how long to retry), or skip it by name. */
export type PreflightChoice =
  | { readonly missing: MissingProperties; readonly retry?: PreflightOptions["retry"] }
  | typeof SKIP_PREFLIGHT

/** `Delivery.live`'s options: a host's choices over what it reads from its ConfigProvider. */
export interface DeliveryOptions {
  /** A preset file (else MAILJET_PRESET, else the Default preset). */
  readonly preset?: Option.Option<string>
  /** Settings over the ConfigProvider's. */
  readonly overrides?: Partial<DeliverySettings>
  /**
   * Preflight runs while the layer is built, as `deliver`'s does: credentials, list, Mailjet's
   * datatypes and the list's unsubscribed contacts. `"skip-and-risk-resubscribing"` skips it.
   */
  readonly preflight?: "run" | typeof SKIP_PREFLIGHT
  /**
   * Properties the preset writes that Mailjet lacks: else MAILJET_MISSING_PROPERTIES, else `allow`
   * (sent without them; each outcome names them in `partial`), so a host's service still starts.
   */
  readonly missingProperties?: MissingProperties
}

/** MAILJET_MISSING_PROPERTIES, with the default of whoever reads it (`fail` for the CLI). */
export const missingPropertiesConfig = (fallback: MissingProperties) =>
  Config.literal("fail", "create", "allow")("MAILJET_MISSING_PROPERTIES").pipe(Config.withDefault(fallback))

/**
 * Sockets to Mailjet beside one per lane, for the calls made beside the lanes' (preflight's reads,
 * the list's unsubscribed read in the background, bulk jobs and their polls); more wait their turn.
 */
const SIDE_CONNECTIONS = 4

/** Delivery's client: as many sockets as its lanes need (MailjetHttp `makeTransport`), and a few. */
const deliveryClient = Layer.unwrapEffect(
  Effect.map(DeliveryConfig, (s) => MailjetClient.layerWith({ connections: s.concurrency + SIDE_CONNECTIONS }))
)

/**
 * Every part but what preflight provides, read from the current ConfigProvider, kept in the output.
 * The host brings a `FileSystem` (for a preset file); the client keeps its own connections.
 */
export const configuredParts = (options: Pick<DeliveryOptions, "preset" | "overrides"> = {}) =>
  Layer.mergeAll(deliveryClient, Consent.layer, Mapping.layer(options.preset), Pacer.layer).pipe(
    Layer.provideMerge(Layer.mergeAll(MailjetConfig.layer, DeliveryConfig.layerWith(options.overrides ?? {})))
  )

/** The same parts from values in code (the tests', the demo's): defaults where nothing is given. */
export interface GivenParts {
  readonly mailjet: Parameters<typeof MailjetConfig.layerFrom>[0]
  readonly preset?: Preset
  readonly settings?: Partial<DeliverySettings>
  readonly consent?: Context.Tag.Service<Consent>
  readonly pacer?: Layer.Layer<Pacer, never, DeliveryConfig>
}

export const givenParts = (given: GivenParts) =>
  Layer.mergeAll(
    deliveryClient,
    Layer.succeed(Consent, given.consent ?? Consent.make()),
    Mapping.layerPreset(given.preset ?? DefaultPreset),
    given.pacer ?? Pacer.layer
  ).pipe(
    Layer.provideMerge(Layer.mergeAll(MailjetConfig.layerFrom(given.mailjet), DeliveryConfig.layerFrom(given.settings ?? {})))
  )

/** What preflight would provide, for a stack that runs none: the preset's datatypes, no suppressions. */
export const withoutPreflight = Layer.merge(
  Layer.effect(PropertyTypes, Effect.map(Mapping, (m) => m.preset.datatypes)),
  Suppressions.layerEmpty
)

/** What the engine reads from preflight, whether it ran or was skipped. */
type Checked<E = never> = Layer.Layer<
  PropertyTypes | Suppressions,
  PreflightError | PropertiesMissing | E,
  Mapping | Consent | MailjetClient
>

/** Preflight as chosen. */
export const preflight = (choice: PreflightChoice): Checked =>
  choice === SKIP_PREFLIGHT
    ? withoutPreflight
    : Preflight.layer(choice.retry === undefined ? { missing: choice.missing } : { missing: choice.missing, retry: choice.retry })

/** The engine over what preflight provides over the parts: every stack's spine. */
const spine = <A, E, R, A1, E1, R1, A2, E2, R2>(
  engine: Layer.Layer<A, E, R>,
  checked: Layer.Layer<A1, E1, R1>,
  parts: Layer.Layer<A2, E2, R2>
) => engine.pipe(Layer.provideMerge(checked), Layer.provideMerge(parts))

/**
 * `deliver` and `replay`: preflight must pass before the first event is read, and its report stays
 * in the output for the run's messages. `kept`: where the list's view of who is unsubscribed is kept
 * between runs (the CLI's state directory, Run/SnapshotFile); nowhere by default.
 */
export const runStack = <A, E, R, KE = never, KR = never>(engine: Layer.Layer<A, E, R>, options: {
  readonly preset: Option.Option<string>
  readonly overrides: Partial<DeliverySettings>
  readonly missing: MissingProperties
  readonly kept?: Layer.Layer<SuppressionSnapshot, KE, KR>
}) =>
  spine(
    engine,
    Preflight.layer({ missing: options.missing }).pipe(
      Layer.provide(options.kept ?? (SuppressionSnapshot.none as Layer.Layer<SuppressionSnapshot, KE, KR>))
    ),
    configuredParts(options)
  )

/**
 * `serve`: preflight retried until Mailjet answers; `following` reads the group's suppressions over
 * preflight's before delivery starts, and `sharing` shares the engine's bulk jobs with the group.
 */
export const workerStack = <A, E, R, F, EF, RF, S, ES, RS>(engine: Layer.Layer<A, E, R>, options: {
  readonly preset: Option.Option<string>
  readonly overrides: Partial<DeliverySettings>
  readonly missing: MissingProperties
  readonly retry: NonNullable<PreflightOptions["retry"]>
  readonly following: Layer.Layer<F, EF, RF>
  readonly sharing: Layer.Layer<S, ES, RS>
}) =>
  options.sharing.pipe(Layer.provideMerge(spine(
    engine.pipe(Layer.provideMerge(options.following)),
    // The list's view is read once the group's topic is (SuppressionTopic.following).
    Preflight.layer({ missing: options.missing, retry: options.retry, suppressions: "later" }),
    configuredParts(options)
  )))

/**
 * An embedding host (`Delivery.live`): preflight runs as `deliver`'s does, unless skipped by name.
 * Missing properties default to `allow`, not the CLI's `fail`: a host's service has nobody at a
 * terminal to rerun it, and no guarantee rests on a property; each outcome names what was left out.
 */
export const embeddedStack = <A, E, R>(engine: Layer.Layer<A, E, R>, options: DeliveryOptions = {}) =>
  spine(engine, embeddedPreflight(options), configuredParts(options))

const embeddedPreflight = (options: DeliveryOptions): Checked<ConfigError.ConfigError> =>
  options.preflight === SKIP_PREFLIGHT
    ? withoutPreflight
    : Layer.unwrapEffect(Effect.map(
      options.missingProperties === undefined ? missingPropertiesConfig("allow") : Effect.succeed(options.missingProperties),
      (missing) => preflight({ missing })
    ))

/** The tests' and the demo's: parts given in code; preflight skipped unless they ask for it. */
export const givenStack = <A, E, R>(engine: Layer.Layer<A, E, R>, given: GivenParts, choice: PreflightChoice = SKIP_PREFLIGHT) =>
  spine(engine, preflight(choice), givenParts(given))
