/** `signal-mailjet check`: credentials, list and contact properties, before any event is sent. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { checkWebhookUrl, registerWebhook } from "../Mailjet/EventCallbacks.js"
import { MailjetClient } from "../Mailjet/MailjetClient.js"
import { MailjetConfig, withoutCredentials } from "../Mailjet/MailjetConfig.js"
import { isHealthy, preflight, preflightRetrying } from "../Mailjet/Preflight.js"
import { MailjetGateway } from "../Mailjet/MailjetGateway.js"
import { Pacer } from "../Mailjet/Pacer.js"
import { bring } from "../Mailjet/SuppressionSnapshot.js"
import { DeliveryConfig } from "../Delivery/DeliveryConfig.js"
import * as SnapshotFile from "../Run/SnapshotFile.js"
import { makeSuppressions } from "../Suppressions.js"
import { Mapping } from "../Mapping.js"
import { LAST_EVENT_PROPERTY } from "../Preset/PropertyTypes.js"
import { createMissingOption, exit, presetOption, reportSetupErrors, stderr } from "./Options.js"

export const checkCommand = Command.make(
  "check",
  {
    preset: presetOption,
    createMissing: createMissingOption,
    registerWebhook: Options.text("register-webhook").pipe(
      Options.optional,
      Options.withDescription(
        "Also point Mailjet's event callbacks for unsub, spam, bounce and blocked at this URL: serve's /mailjet/events, with MAILJET_WEBHOOK_USER:MAILJET_WEBHOOK_PASSWORD@ in it. Updates existing ones."
      )
    )
  },
  (o) =>
    Effect.gen(function*() {
      const mapping = yield* Mapping
      const result = yield* Effect.either(preflight(mapping.preset, { createMissing: o.createMissing }))
      if (Either.isLeft(result)) {
        yield* stderr(`signal-mailjet check: ${result.left.message}`)
        return yield* exit(2)
      }
      const r = result.right
      yield* Console.log(`list ${r.list.id} "${r.list.name}": reachable with these credentials`)
      for (const [name, datatype] of mapping.preset.datatypes) {
        const created = r.created.some((c) => c.name.toLowerCase() === name.toLowerCase())
        const missing = r.missing.some((m) => m.name === name)
        const mismatch = r.mismatched.find((m) => m.name === name)
        yield* Console.log(
          missing
            ? `property ${name} (${datatype}): MISSING in Mailjet; create it or run check --create-missing-properties`
            : mismatch
            ? `property ${name}: Mailjet has ${mismatch.mailjet}, the preset writes ${datatype}: change one of them`
            : `property ${name} (${r.datatypes.get(name)}): ${created ? "created" : "ok"}`
        )
      }
      yield* Console.log(
        r.marker
          ? `property ${LAST_EVENT_PROPERTY} (datetime): ${r.created.some((c) => c.name === LAST_EVENT_PROPERTY) ? "created" : "ok"}; replays are placed by event time`
          : `property ${LAST_EVENT_PROPERTY} (datetime): not defined (optional); without it a replay never overwrites what Mailjet holds. Create it with check --create-missing-properties`
      )
      // The list's unsubscribed contacts, read whole and kept in the state directory: the next
      // `deliver` then resolves only the IDs it has not seen (Mailjet/SuppressionSnapshot).
      const brought = yield* Effect.either(Effect.scoped(Effect.gen(function*() {
        const gateway = yield* MailjetGateway.fromContext
        return yield* bring(makeSuppressions(), { subscribers: r.list.subscriberCount, retrying: preflightRetrying(gateway), wait: true })
      })).pipe(Effect.provide(Layer.mergeAll(SnapshotFile.fromEnvironment, Pacer.layer.pipe(Layer.provide(DeliveryConfig.layer))))))
      if (Either.isLeft(brought)) {
        yield* stderr(`signal-mailjet check: reading the list's unsubscribed contacts failed: ${brought.left.message}`)
        return yield* exit(2)
      }
      if (brought.right.suppressed.length > 0) {
        yield* Console.log(`list ${r.list.id}: ${brought.right.suppressed.length} contacts unsubscribed in Mailjet, kept in the state directory for the next deliver`)
      }
      if (Option.isSome(o.registerWebhook)) {
        const url = o.registerWebhook.value
        const problem = checkWebhookUrl(url)
        if (problem !== undefined) {
          yield* stderr(`signal-mailjet check: --register-webhook ${withoutCredentials(url)} ${problem}`)
          return yield* exit(2)
        }
        const registered = yield* Effect.either(registerWebhook(url))
        if (Either.isLeft(registered)) {
          yield* stderr(`signal-mailjet check: registering the webhook failed: ${registered.left.message}`)
          return yield* exit(2)
        }
        for (const w of registered.right) {
          yield* Console.log(`event callback ${w.eventType} (${w.id}): ${w.change}, to ${withoutCredentials(url)}`)
        }
      }
      yield* Console.log(isHealthy(r) ? "all good" : "not ready: see the lines above")
      return yield* exit(isHealthy(r) ? 0 : 1)
    }).pipe(
      Effect.provide(Layer.mergeAll(
        MailjetClient.layer.pipe(Layer.provideMerge(MailjetConfig.layer)),
        Mapping.layer(o.preset)
      )),
      reportSetupErrors
    )
).pipe(
  Command.withDescription(
    "Check the credentials, the list (GET contactslist/{id}) and every contact property the preset writes; with --register-webhook, also register serve's /mailjet/events as Mailjet's event callback. Exit 0 only when all is well."
  )
)
