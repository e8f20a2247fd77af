/**
 * The datatype of each contact property a run writes, which decides how values are fitted before
 * they are sent. The preset declares them; preflight replaces them with what Mailjet reports.
 */
import * as Context from "effect/Context"
import type { Datatype } from "./Datatypes.js"

/**
 * The datetime contact property every update writes its event's time to, once Mailjet has it, so a
 * replay can tell whether a newer event of the contact was applied since (see ReplayGuard).
 */
export const LAST_EVENT_PROPERTY = "signal_last_event_at"

export class PropertyTypes extends Context.Tag("signal-mailjet/PropertyTypes")<
  PropertyTypes,
  ReadonlyMap<string, Datatype>
>() {}
