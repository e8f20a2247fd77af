/**
 * Coalescing for bulk delivery: one contact's updates in a batch window, folded into the one
 * update that leaves Mailjet in the same final state as sending them one by one, in order.
 *
 * Mailjet's subscription state machine for one list (as the simulator implements it), per action:
 * `addforce` → subscribed, `unsub` → unsubscribed, `remove` → not in the list, whatever came
 * before; `addnoforce` subscribes a contact not in the list and leaves any other state alone.
 * So every sequence of actions is one of these four functions, and the fold composes them:
 * a trailing `addnoforce` after `remove` is `addforce` (the contact ends subscribed either way),
 * after `unsub` it stays `unsub`, after `addforce` it stays `addforce`.
 *
 * Name: the last one sent (requestBody sends a Name only when it has content). Properties: merged
 * in order, the last value wins, `null` (which clears) included, `false` and `0` kept.
 */
import type { ManageContactBody } from "../Mailjet/MailjetClient.js"
import type { Action } from "../Preset/Preset.js"

/** The action equal to `before` followed by `next`. */
export const foldAction = (before: Action | undefined, next: Action): Action => {
  if (next !== "addnoforce" || before === undefined) return next
  return before === "remove" ? "addforce" : before
}

/** One update equal to `updates` (one contact's, non-empty) applied in order. */
export const foldUpdates = (updates: ReadonlyArray<ManageContactBody>): ManageContactBody => {
  let action: Action | undefined
  let name: string | undefined
  let properties: Record<string, string | number | boolean | null> | undefined
  for (const u of updates) {
    action = foldAction(action, u.Action)
    if (u.Name !== undefined) name = u.Name
    if (u.Properties === undefined) continue
    properties ??= {}
    // An `undefined` value is not sent (JSON has none): it must not hide an earlier value.
    for (const [k, v] of Object.entries(u.Properties)) if (v !== undefined) properties[k] = v
  }
  if (action === undefined) throw new Error("foldUpdates needs at least one update")
  return {
    Email: updates[updates.length - 1]!.Email,
    ...(name === undefined ? {} : { Name: name }),
    Action: action,
    ...(properties === undefined ? {} : { Properties: properties })
  }
}
