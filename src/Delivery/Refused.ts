/**
 * What Mailjet refused of an update, and what a replay overtaken by a newer event leaves out: the
 * per-event path (internal/send.ts) sends the rest, and the outcome says what was left out and why.
 */
import type { PartialUpdate } from "../Domain/Outcome.js"
import type { ManageContactBody } from "../Mailjet/MailjetClient.js"
import type { InvalidContact, PropertyMissing } from "../Mailjet/MailjetError.js"

/**
 * The body without the properties Mailjet refused, or `undefined` when the refusal was about more
 * than properties this body sends (then the whole event is dead-lettered).
 */
export const withoutRefused = (
  body: ManageContactBody,
  refused: ReadonlyArray<string> | undefined
): ManageContactBody | undefined => {
  const properties = body.Properties
  if (refused === undefined || refused.length === 0 || properties === undefined) return undefined
  const names = new Set(refused.map((n) => n.toLowerCase()))
  const kept = Object.entries(properties).filter(([name]) => !names.has(name.toLowerCase()))
  if (kept.length + names.size !== Object.keys(properties).length) return undefined
  const { Properties: _, ...rest } = body
  return kept.length === 0 ? rest : { ...rest, Properties: Object.fromEntries(kept) }
}

export const addRefused = (
  partial: PartialUpdate | undefined,
  error: PropertyMissing | InvalidContact
): PartialUpdate => {
  const refused = error.properties ?? []
  const reason = error._tag === "PropertyMissing"
    ? `contact properties not defined in Mailjet: ${refused.join(", ")}. Create them (Contacts > Contact properties) or run \`signal-mailjet check --create-missing-properties\`, then replay the dead letters: only these properties are sent again`
    : `${error.message} Only these properties are sent again on replay`
  return {
    properties: [...(partial?.properties ?? []), ...refused],
    error: error._tag,
    reason: partial === undefined ? reason : `${partial.reason}; ${reason}`
  }
}

export const supersededReason = (parts: ReadonlyArray<string>, what: string) =>
  `replayed after a newer event of this contact was applied (or without signal_last_event_at to tell): ${what}; not applied, as the newer state wins: ${
    parts.join(", ")
  }`
