/**
 * Before the first event: are the credentials and the list good, and does every property the
 * preset can write exist in Mailjet with a datatype its values fit? Contact properties are read
 * once per run.
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { Mapping } from "../Mapping.js"
import { Consent } from "../Consent.js"
import * as Option from "effect/Option"
import { makeSuppressions, type Suppression, Suppressions } from "../Suppressions.js"
import { bring, SuppressionSnapshot } from "./SuppressionSnapshot.js"
import { LAST_EVENT_PROPERTY, PropertyTypes } from "../Preset/PropertyTypes.js"
import { type ContactList, type MailjetClient, type PropertyDefinition, type PropertyRejected } from "./MailjetClient.js"
import { MailjetGateway, transientRetries } from "./MailjetGateway.js"
import { isTransient, type ListNotFound, type MailjetUnavailable, type RateLimited, type Unauthorized } from "./MailjetError.js"
import type { Datatype } from "../Preset/Datatypes.js"
import type { Preset } from "../Preset/Preset.js"

export interface PreflightReport {
  readonly list: ContactList
  /** Properties the preset writes that Mailjet lacks (after any were created). */
  readonly missing: ReadonlyArray<{ readonly name: string; readonly datatype: Datatype }>
  readonly created: ReadonlyArray<PropertyDefinition>
  /** Defined with a datatype the preset's values may not fit. */
  readonly mismatched: ReadonlyArray<{ readonly name: string; readonly preset: Datatype; readonly mailjet: Datatype }>
  /** Mailjet's datatype for each preset property it has, keyed by the preset's spelling. */
  readonly datatypes: ReadonlyMap<string, Datatype>
  /**
   * `signal_last_event_at` is defined as a datetime: every update writes its event's time there, and
   * replays can place themselves exactly (see ReplayGuard). Without it they are conservative.
   */
  readonly marker: boolean
  /** Contacts of the list Mailjet holds as unsubscribed, by email, known before the first send (SuppressionSnapshot). */
  readonly suppressed: ReadonlyArray<readonly [string, Suppression]>
  /** Unsubscribed recipients whose addresses are still read, in the background. */
  readonly pending: number
  /** Even who they are is read in the background: a large list, with no view kept. */
  readonly unread?: true
}

export const isHealthy = (r: PreflightReport): boolean => r.missing.length === 0 && r.mismatched.length === 0

/** Values of the preset's type can be written to a property of Mailjet's type. */
export const compatible = (preset: Datatype, mailjet: Datatype): boolean =>
  preset === mailjet || mailjet === "str" || (preset === "int" && mailjet === "float")

// Preflight runs once; a blip should not abort a run, an outage should. About 15 s (10 to 20, by
// the jitter): long enough for a simulator started in the background just before (README, "Try it
// locally"; in CI it took over 8 s to listen on a loaded machine, past the 3.5 s of three tries).
const transient = transientRetries({ base: "650 millis", max: "10 seconds", attempts: 6 })

export interface PreflightOptions {
  readonly createMissing: boolean
  /**
   * Who is unsubscribed in the list, so standing consent does not re-subscribe them
   * (SuppressionSnapshot): read by the layer (`now`), or by whoever provides the set (`later`:
   * serve, once the group's topic is read).
   */
  readonly suppressions?: "now" | "later"
  /** How long to retry a 429 or an unavailable Mailjet; a few tries by default. */
  readonly retry?: Schedule.Schedule<unknown, { readonly _tag: string; readonly message: string }>
}

export type PreflightError = Unauthorized | ListNotFound | RateLimited | MailjetUnavailable | PropertyRejected

/**
 * What a run does when properties the preset writes are not defined in Mailjet: stop before
 * sending (`fail`), define them with the preset's datatypes (`create`), or send without them
 * (`allow`: each such property is dead-lettered on its own, for a replay once it exists).
 */
export type MissingProperties = "fail" | "create" | "allow"

/** Properties the preset writes are not defined in Mailjet, and the run was not told what to do. */
export class PropertiesMissing extends Data.TaggedError("PropertiesMissing")<{
  readonly missing: ReadonlyArray<{ readonly name: string; readonly datatype: Datatype }>
}> {
  override get message(): string {
    const names = this.missing.map((m) => `${m.name} (${m.datatype})`).join(", ")
    return `contact properties the preset writes are not defined in Mailjet: ${names}. Nothing was sent. Create them in Mailjet (Contacts > Contact properties), or rerun with --create-missing-properties to define them with these datatypes, or with --allow-missing-properties to send without them (each is then dead-lettered on its own, for a replay); serve reads the same choice from MAILJET_MISSING_PROPERTIES=create|allow.`
  }
}

/** The report of the run's preflight, which also sets the `PropertyTypes` delivery fits values to. */
export class Preflight extends Context.Tag("signal-mailjet/Preflight")<Preflight, PreflightReport>() {
  /**
   * Runs preflight once, when the layer is built: Mailjet's datatypes over the preset's. Fails
   * with PropertiesMissing, before anything is sent, when `missing` is `fail` and some are.
   */
  static readonly layer = (options: Omit<PreflightOptions, "createMissing"> & { readonly missing: MissingProperties }) =>
    Layer.scopedContext(Effect.gen(function*() {
      const { preset } = yield* Mapping
      const { resubscribe } = yield* Consent
      const checked = yield* preflight(preset, { ...options, createMissing: options.missing === "create" })
      if (options.missing === "fail" && checked.missing.length > 0) {
        return yield* Effect.fail(new PropertiesMissing({ missing: checked.missing }))
      }
      const set = makeSuppressions()
      let report = checked
      if (resubscribe === "explicit" && options.suppressions !== "later") {
        const gateway = yield* MailjetGateway.fromContext
        // Kept nowhere unless the stack says where (the CLI's state directory).
        const kept = yield* Effect.serviceOption(SuppressionSnapshot)
        const brought = yield* bring(set, { subscribers: checked.list.subscriberCount, retrying: preflightRetrying(gateway, options.retry) }).pipe(
          Option.isSome(kept) ? Effect.provideService(SuppressionSnapshot, kept.value) : Effect.provide(SuppressionSnapshot.none)
        )
        report = { ...checked, ...brought }
      }
      return Context.make(Preflight, report).pipe(
        Context.add(PropertyTypes, new Map([...preset.datatypes, ...report.datatypes])),
        Context.add(Suppressions, set)
      )
    }))
}

/**
 * Preflight's calls: each takes a slot of the run's budget (the gateway's), and a transient failure
 * is retried on `retry` (else about 15 s), said once at the first one.
 */
export const preflightRetrying = (gateway: typeof MailjetGateway.Service, retry?: PreflightOptions["retry"]) => {
  // Said at the first failure, not after 15 s of silence: what failed, and that it is retried.
  let announced = false
  const schedule = retry ?? transient.pipe(
    // The schedule sees every failure, the fatal ones (401, no such list) included: only what is retried is announced.
    Schedule.tapInput((e: { readonly _tag: string; readonly message: string }) => {
      if (announced || !isTransient(e)) return Effect.void
      announced = true
      return Effect.logWarning(`preflight: ${e.message} Retrying for about 15 s.`)
    })
  )
  return <A, E extends { readonly _tag: string; readonly message: string }>(e: Effect.Effect<A, E>) =>
    Effect.retry(gateway.paced(e), { schedule, while: isTransient })
}

export const preflight: (
  preset: Preset,
  options: PreflightOptions
) => Effect.Effect<
  PreflightReport,
  PreflightError,
  MailjetClient
> = Effect.fn("Mailjet.preflight")(function*(preset: Preset, options: PreflightOptions) {
  // Mailjet's budget is per key: with a run's Pacer about, each call takes a slot (the gateway's),
  // or the run's first second draws 429s (measured: 2 at 10 calls/s) and starts at half its rate.
  const gateway = yield* MailjetGateway.fromContext
  const client = gateway.client
  const retrying = preflightRetrying(gateway, options.retry)
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
  let marker = defined.get(LAST_EVENT_PROPERTY)
  if (marker === undefined && options.createMissing) {
    marker = yield* retrying(client.defineProperty(LAST_EVENT_PROPERTY, "datetime"))
    created.push(marker)
  }
  if (marker?.datatype === "datetime") datatypes.set(LAST_EVENT_PROPERTY, "datetime")
  return { list, missing, created, mismatched, datatypes, marker: marker?.datatype === "datetime", suppressed: [], pending: 0 }
})
