/**
 * signal-mailjet as a library: the layers a Signal service composes into its own Effect program.
 * See "Embedding" in the README.
 */
export { Consent, type ConsentState, DEFAULT_CONSENT_CATEGORY, resolveConsent } from "./Consent.js"
export { coerceProperties, coerceValue } from "./Preset/Datatypes.js"
export { Delivery, makeRunState, type Prepared, prepare, type RunState, type StopReason, stopMessage } from "./Delivery/Delivery.js"
export { DeliveryConfig, type DeliverySettings, deliverySettings } from "./Delivery/DeliveryConfig.js"
export { formatConfigError } from "./internal/config.js"
export {
  type ContactList,
  type ManageContactBody,
  type ManagedContact,
  MailjetClient,
  type PropertyDefinition,
  PropertyRejected
} from "./Mailjet/MailjetClient.js"
export { DEFAULT_BASE_URL, MailjetConfig, type MailjetSettings, mailjetSettings } from "./Mailjet/MailjetConfig.js"
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
export { type ContactUpsert, DropReason, type Mapped, mapEvent, Mapping, normaliseEmail, requestBody } from "./Mapping.js"
export * as Metrics from "./Delivery/Metrics.js"
export { deadLetterEvents, InputUnreadable, readLines } from "./Run/Ndjson.js"
export { deadLetterLine, type Outcome, outcomeLine, type Result, type Summary } from "./Domain/Outcome.js"
export { Pacer } from "./Delivery/Pacer.js"
export { isHealthy, preflight, type PreflightReport } from "./Mailjet/Preflight.js"
export {
  canonicalEventName,
  type Datatype,
  DefaultPreset,
  loadPreset,
  parsePreset,
  type Preset,
  PresetInvalid
} from "./Preset/Preset.js"
export { Shutdown } from "./Run/Shutdown.js"
export { decodeSignalEvent, SignalEvent } from "./Domain/SignalEvent.js"
export * as Simulator from "./Simulator/Simulator.js"
