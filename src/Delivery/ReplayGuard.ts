/**
 * A replayed event must never undo what a newer event of the same contact did. Before a replay
 * is sent, what Mailjet holds for the contact decides whether a newer event was applied since this
 * one happened:
 * - `signal_last_event_at`, a datetime contact property every update writes (the event's own
 *   time) once it exists in Mailjet (`check --create-missing-properties` defines it): exact;
 * - without it, nothing places a newer event, so whatever Mailjet holds wins: conservative.
 * When a newer event was applied, the replay cannot subscribe (it is sent with `addnoforce` while
 * the contact is in the list, and not at all when it is not, since that would add it), though an
 * unsubscribe or a removal still applies; and it writes only properties Mailjet holds no value
 * for. Every part that may not end as the events in order give it is named.
 */
import type { ContactState, ManageContactBody } from "../Mailjet/MailjetClient.js"
import { LAST_EVENT_PROPERTY } from "../Preset/PropertyTypes.js"

export { type ContactState, LAST_EVENT_PROPERTY }


export type Guarded =
  | { readonly _tag: "Send"; readonly body: ManageContactBody; readonly superseded: ReadonlyArray<string> }
  | { readonly _tag: "Skip"; readonly superseded: ReadonlyArray<string> }

/** The part of a contact that is its subscription, as `superseded` names it. */
export const SUBSCRIPTION = "subscription"

const propertyOf = (properties: Readonly<Record<string, unknown>>, name: string): unknown => {
  const wanted = name.toLowerCase()
  for (const [key, value] of Object.entries(properties)) if (key.toLowerCase() === wanted) return value
  return undefined
}

const held = (v: unknown): boolean => v !== undefined && v !== null && v !== ""

const timeOf = (v: unknown): number | undefined => {
  const t = typeof v === "string" ? Date.parse(v) : typeof v === "number" ? v * 1000 : Number.NaN
  return Number.isFinite(t) ? t : undefined
}

/**
 * Whether a newer event may have changed the subscription, and the properties, since an event of
 * `eventAt` (ms; `undefined` when it had no time, which cannot be placed: what Mailjet holds wins).
 */
export const overtaken = (eventAt: number | undefined, state: ContactState) => {
  const last = timeOf(propertyOf(state.properties, LAST_EVENT_PROPERTY))
  // Without a time (or without the marker, when delivery does not read it) nothing places the event.
  if (eventAt === undefined) return { subscription: state.exists, properties: state.exists }
  if (last !== undefined) return { subscription: last > eventAt, properties: last > eventAt }
  // Without the marker nothing in Mailjet places a newer event (an unsubscribe of a contact already
  // unsubscribed leaves no time behind): whatever Mailjet holds may be newer, so it wins.
  return { subscription: state.exists, properties: state.exists }
}

/**
 * The body a replay may send. `propertiesOnly`: the event's action landed when it was first sent,
 * so only its properties are replayed (and `addnoforce` keeps the subscription as it is).
 */
export const guardReplay = (
  body: ManageContactBody,
  eventAt: number | undefined,
  state: ContactState,
  propertiesOnly: boolean
): Guarded => {
  const late = overtaken(eventAt, state)
  const names = Object.keys(body.Properties ?? {}).filter((n) => n !== LAST_EVENT_PROPERTY)
  const changesSubscription = !propertiesOnly && body.Action !== "addnoforce"
  // Taking a subscribed contact out is never held back by a newer event: subscribing someone who
  // did not opt in is the worse mistake. The outcome still names the subscription as uncertain. A
  // late removal of a contact that is not subscribed would only erase a newer unsubscribe.
  const withdraws = !propertiesOnly &&
    (body.Action === "unsub" || (body.Action === "remove" && state.membership === "subscribed"))
  const subscriptionLost = changesSubscription && late.subscription
  // Any action adds a contact that is not in the list: only the event's own, when nothing overtook it.
  if (
    (late.subscription && body.Action === "remove" && !withdraws) ||
    (state.membership === undefined && !withdraws && (propertiesOnly || late.subscription))
  ) {
    return { _tag: "Skip", superseded: [...(propertiesOnly ? [] : [SUBSCRIPTION]), ...names] }
  }
  const stale = names.filter((n) => late.properties && held(propertyOf(state.properties, n)))
  if (!subscriptionLost && stale.length === 0 && !late.properties) return { _tag: "Send", body, superseded: [] }
  const kept = names.filter((n) => !stale.includes(n)).map((n) => [n, body.Properties![n]] as const)
  const { Properties: _, ...rest } = body
  return {
    _tag: "Send",
    body: {
      ...rest,
      // The marker only ever moves forward: an overtaken replay leaves it.
      Action: late.subscription && !withdraws ? "addnoforce" : body.Action,
      ...(kept.length === 0 ? {} : { Properties: Object.fromEntries(kept) })
    },
    superseded: [...(subscriptionLost ? [SUBSCRIPTION] : []), ...stale]
  }
}
