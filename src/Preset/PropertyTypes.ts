/**
 * The datatype of each contact property a run writes, which decides how values are fitted before
 * they are sent. The preset declares them; preflight replaces them with what Mailjet reports.
 */
import * as Context from "effect/Context"
import type { Datatype } from "./Datatypes.js"

export class PropertyTypes extends Context.Tag("signal-mailjet/PropertyTypes")<
  PropertyTypes,
  ReadonlyMap<string, Datatype>
>() {}
