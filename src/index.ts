/**
 * signal-mailjet as a library: the layers a Signal service composes into its own Effect program,
 * the errors it can act on, and the shapes it reads. See "Embedding" in the README.
 */

/** The engine: `deliver(event)` for one event, `run(lines)` for NDJSON; `Delivery.live()` wires every part and runs preflight. */
export { Delivery, type DeliveryOptions } from "./Delivery/Delivery.js"
/** How hard to push Mailjet and how patiently to retry (MAILJET_CONCURRENCY, MAILJET_MAX_RPS, …). */
export { DeliveryConfig, type DeliverySettings } from "./Delivery/DeliveryConfig.js"
/** What ends a run early, after every event read has its result. */
export { BulkJobPending, MailjetOutage, type RunStopped } from "./Delivery/RunState.js"
/** Counters and histograms in Effect's registry (read them with `Metric.snapshot`), and email masking. */
export * as Metrics from "./Delivery/Metrics.js"
/** The request budget every lane shares. */
export { Pacer } from "./Mailjet/Pacer.js"

/** Credentials (as `Redacted`), list and base URL, from the environment or in code (`layerFrom`). */
export { DEFAULT_BASE_URL, MailjetConfig, type MailjetSettings } from "./Mailjet/MailjetConfig.js"
/** The Mailjet Contacts API as typed calls, over its own keep-alive connections. */
export {
  type ContactList,
  type ContactState,
  type ManageContactBody,
  type ManagedContact,
  MailjetClient,
  type MailjetContact,
  type PropertyDefinition,
  PropertyRejected,
  type Subscription
} from "./Mailjet/MailjetClient.js"
/** Every error a Mailjet call ends in, each with the fix in its message; fatal ones stop a run. */
export {
  type FatalError,
  InvalidContact,
  isFatal,
  isTransient,
  ListNotFound,
  MailjetUnavailable,
  type MailjetError,
  PropertyMissing,
  RateLimited,
  Unauthorized
} from "./Mailjet/MailjetError.js"
/** Checks credentials, list and properties before a run, and provides what delivery fits values to. */
export { type MissingProperties, Preflight, type PreflightReport, PropertiesMissing } from "./Mailjet/Preflight.js"

/** Consent resolution (category, and whether standing consent may re-subscribe). */
export { Consent, type ConsentState, DEFAULT_CONSENT_CATEGORY, type Resubscribe } from "./Consent.js"
/** Contacts that standing consent must not re-subscribe. */
export { type Suppression, Suppressions } from "./Suppressions.js"
/** Erasures remembered (a keyed hash and a time), so no older event re-creates an erased contact; in memory unless provided. */
export { makeTombstones, type Tombstone, type TombstoneSet, Tombstones } from "./Domain/Tombstones.js"
/** Keyed records with times kept in a state directory, and the tombstones kept there (what the CLI uses). */
export { StateStore, StateUnusable } from "./Run/StateStore.js"
export { layer as tombstoneFileLayer } from "./Run/TombstoneFile.js"
/** Event + consent → the managecontact update, or a drop with a reason. */
export { type ContactUpsert, DropReason, type Mapped, Mapping } from "./Mapping.js"
/** The preset: which events become which updates (the Default one, or a file). */
export { type Datatype, DefaultPreset, loadPreset, parsePreset, type Preset, PresetInvalid } from "./Preset/Preset.js"
/** The datatype of each property a run writes. */
export { LAST_EVENT_PROPERTY, PropertyTypes } from "./Preset/PropertyTypes.js"

/** The input: a Signal event, and what became of it. */
export { SignalEvent } from "./Domain/SignalEvent.js"
export { deadLetterLine, type Outcome, outcomeLine, type Result, type Summary } from "./Domain/Outcome.js"
/** NDJSON in, and dead-letter records back into events for a replay. */
export { deadLetterEvents, InputUnreadable, readLines } from "./Run/Ndjson.js"
/** A request to stop gracefully, which a host running its own signals provides. */
export { Shutdown } from "./Run/Shutdown.js"
/** The local Mailjet simulator, for a host's own tests. */
export * as Simulator from "./Simulator/Simulator.js"
