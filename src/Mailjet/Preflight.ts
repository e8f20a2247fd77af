/**
 * Before the first event: are the credentials and the list good, and does every property the
 * preset can write exist in Mailjet with a datatype its values fit? Contact properties are read
 * once per run.
 */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { ContactList, PropertyDefinition } from "./MailjetClient.js"
import type { PropertyRejected } from "./MailjetClient.js"
import { MailjetClient } from "./MailjetClient.js"
import { isTransient, type ListNotFound, type MailjetUnavailable, type RateLimited, type Unauthorized } from "./MailjetError.js"
import type { Datatype, Preset } from "../Preset/Preset.js"

export interface PreflightReport {
  readonly list: ContactList
  /** Properties the preset writes that Mailjet lacks (after any were created). */
  readonly missing: ReadonlyArray<{ readonly name: string; readonly datatype: Datatype }>
  readonly created: ReadonlyArray<PropertyDefinition>
  /** Defined with a datatype the preset's values may not fit. */
  readonly mismatched: ReadonlyArray<{ readonly name: string; readonly preset: Datatype; readonly mailjet: Datatype }>
  /** Mailjet's datatype for each preset property it has, keyed by the preset's spelling. */
  readonly datatypes: ReadonlyMap<string, Datatype>
}

export const isHealthy = (r: PreflightReport): boolean => r.missing.length === 0 && r.mismatched.length === 0

/** Values of the preset's type can be written to a property of Mailjet's type. */
export const compatible = (preset: Datatype, mailjet: Datatype): boolean =>
  preset === mailjet || mailjet === "str" || (preset === "int" && mailjet === "float")

// Preflight runs once; a blip should not abort a run, an outage should.
const transient = Schedule.exponential("500 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(3)))

export const preflight = (
  preset: Preset,
  options: { readonly createMissing: boolean }
): Effect.Effect<
  PreflightReport,
  Unauthorized | ListNotFound | RateLimited | MailjetUnavailable | PropertyRejected,
  MailjetClient
> =>
  Effect.gen(function*() {
    const client = yield* MailjetClient
    const retrying = <A, E extends { readonly _tag: string }>(e: Effect.Effect<A, E>) =>
      Effect.retry(e, {
        schedule: transient,
        while: isTransient
      })
    const list = yield* retrying(client.getList)
    const defined = new Map((yield* retrying(client.listProperties)).map((p) => [p.name.toLowerCase(), p]))
    const missing: Array<{ name: string; datatype: Datatype }> = []
    const created: Array<PropertyDefinition> = []
    const mismatched: Array<{ name: string; preset: Datatype; mailjet: Datatype }> = []
    const datatypes = new Map<string, Datatype>()
    for (const [name, datatype] of preset.datatypes) {
      let found = defined.get(name.toLowerCase())
      if (found === undefined && options.createMissing) {
        found = yield* retrying(client.defineProperty(name, datatype))
        created.push(found)
      }
      if (found === undefined) {
        missing.push({ name, datatype })
        continue
      }
      datatypes.set(name, found.datatype)
      if (!compatible(datatype, found.datatype)) mismatched.push({ name, preset: datatype, mailjet: found.datatype })
    }
    return { list, missing, created, mismatched, datatypes }
  })

