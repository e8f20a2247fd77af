/**
 * signal-mailjet as a library: the layers a Signal service composes into its own Effect program.
 * See "Embedding" in the README.
 */
export { Consent, type ConsentState, DEFAULT_CONSENT_CATEGORY, resolveConsent } from "./Consent.js"
export { coerceProperties, coerceValue } from "./Datatypes.js"
export { Delivery, makeRunState, type Prepared, prepare, type RunState, type StopReason, stopMessage } from "./Delivery.js"
export { DeliveryConfig, type DeliverySettings, deliverySettings } from "./DeliveryConfig.js"
export { formatConfigError } from "./internal/config.js"
export {
  type ContactList,
  type ManageContactBody,
  type ManagedContact,
  MailjetClient,
  type PropertyDefinition,
  PropertyRejected
} from "./MailjetClient.js"
export { DEFAULT_BASE_URL, MailjetConfig, type MailjetSettings, mailjetSettings } from "./MailjetConfig.js"
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
} from "./MailjetError.js"
export { type ContactUpsert, DropReason, type Mapped, mapEvent, Mapping, normaliseEmail, requestBody } from "./Mapping.js"
export * as Metrics from "./Metrics.js"
export { deadLetterEvents, InputUnreadable, readLines } from "./Ndjson.js"
export { deadLetterLine, type Outcome, outcomeLine, type Result, type Summary } from "./Outcome.js"
export { Pacer } from "./Pacer.js"
export { isHealthy, preflight, type PreflightReport } from "./Preflight.js"
export {
  canonicalEventName,
  type Datatype,
  DefaultPreset,
  loadPreset,
  parsePreset,
  type Preset,
  PresetInvalid
} from "./Preset.js"
export { Shutdown } from "./Shutdown.js"
export { decodeSignalEvent, SignalEvent } from "./SignalEvent.js"
export * as Simulator from "./Simulator.js"
