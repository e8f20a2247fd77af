/**
 * `signal-mailjet erase EMAIL… [--from FILE]`: GDPR deletion requests by hand. Each address is
 * looked up in Mailjet and erased (DELETE /v4/contacts/{ID}), one call at a time, and a tombstone
 * is kept in the state directory, so that no older event of a later `deliver` or `replay` brings
 * the contact back. One outcome line per address, in the order given.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { DeliveryConfig } from "../Delivery/DeliveryConfig.js"
import { makeRunState, runHooks } from "../Delivery/RunState.js"
import { outcomeLine, type Outcome } from "../Domain/Outcome.js"
import { Tombstones } from "../Domain/Tombstones.js"
import { makeErase } from "../internal/erase.js"
import { MailjetClient } from "../Mailjet/MailjetClient.js"
import { MailjetConfig } from "../Mailjet/MailjetConfig.js"
import { MailjetGateway } from "../Mailjet/MailjetGateway.js"
import { Pacer } from "../Mailjet/Pacer.js"
import { normaliseEmail } from "../Mapping.js"
import { StateStore, StateUnusable } from "../Run/StateStore.js"
import * as Stdout from "../Run/Stdout.js"
import * as TombstoneFile from "../Run/TombstoneFile.js"
import { exit, reportSetupErrors, stderr } from "./Options.js"

const NOT_AN_ADDRESS = "not an email address: nothing was erased; give the contact's address, e.g. jane.doe@example.com"

/** The addresses of `--from FILE`: one a line; blank lines and `#` comments skipped. */
const readAddresses = (path: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(path)).pipe(
    Effect.map((text) => text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))),
    Effect.mapError((e) => new StateUnusable({ path, problem: `the --from file cannot be read (${e.message})` }))
  )

const eraseAll = (addresses: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const store = yield* StateStore
    // The state must be usable before anything is erased: an erasure nobody remembers would let
    // the next replay re-create the contact.
    yield* Effect.try({ try: () => store.secret(), catch: (e) => e as StateUnusable })
    const gateway = yield* MailjetGateway.fromContext
    const tombstones = yield* Tombstones
    const state = yield* makeRunState
    const lane = gateway.lane(runHooks(state))
    const erase = makeErase(gateway, tombstones)
    const counts = { done: 0, failed: 0, stopped: 0 }
    for (let i = 0; i < addresses.length; i++) {
      const email = normaliseEmail(addresses[i]!)
      // Never a timestamp of the past: an erasure by hand is measured from now.
      const outcome: Outcome = email === undefined
        ? { outcome: "dropped", reason: NOT_AN_ADDRESS }
        : yield* erase({ line: i + 1, email }, -1, state, lane)
      if (outcome.outcome === "erased" || outcome.outcome === "not-found") counts.done++
      else if (outcome.outcome === "not-attempted") counts.stopped++
      else counts.failed++
      yield* Stdout.write(`${outcomeLine({ line: i + 1, raw: undefined, text: undefined, messageId: undefined, event: "erase", outcome })}\n`)
    }
    // Written now, not only when the layer closes: a failure here is this command's to report.
    const oldest = (yield* Clock.currentTimeMillis) - Duration.toMillis(yield* TombstoneFile.retention)
    yield* TombstoneFile.saveTombstones(store, tombstones, oldest)
    yield* stderr(
      `signal-mailjet erase: ${addresses.length} addresses, ${counts.done} erased or not in Mailjet, ${counts.failed} not erased, ${counts.stopped} not attempted; tombstones in ${Option.getOrElse(store.dir, () => "?")}`
    )
    return yield* exit(counts.stopped > 0 ? 2 : counts.failed > 0 ? 1 : 0)
  })

export const eraseCommand = Command.make(
  "erase",
  {
    emails: Args.text({ name: "EMAIL" }).pipe(Args.withDescription("An address to erase; as many as wanted."), Args.repeated),
    from: Options.file("from", { exists: "yes" }).pipe(
      Options.optional,
      Options.withDescription("Also erase the addresses in this file, one a line (blank lines and # comments skipped).")
    )
  },
  (o) =>
    Effect.gen(function*() {
      const addresses = [...o.emails, ...(Option.isSome(o.from) ? yield* readAddresses(o.from.value) : [])]
      if (addresses.length === 0) {
        yield* stderr("signal-mailjet erase: give at least one address, or --from FILE")
        return yield* exit(2)
      }
      return yield* eraseAll(addresses)
    }).pipe(
      Effect.provide(TombstoneFile.layer.pipe(
        Layer.provideMerge(StateStore.layer),
        Layer.provideMerge(Layer.mergeAll(MailjetClient.layer, Pacer.layer).pipe(
          Layer.provideMerge(Layer.mergeAll(MailjetConfig.layer, DeliveryConfig.layer))
        ))
      )),
      reportSetupErrors
    )
).pipe(
  Command.withDescription(
    "Erase contacts from Mailjet for GDPR deletion requests: each address is looked up (GET /v3/REST/contact/{email}) and, when Mailjet has it, erased (DELETE /v4/contacts/{ID}): anonymised at once, purged by Mailjet after 30 days. A tombstone (a keyed hash of the address, never the address, and the time) is kept in the state directory, so no later run re-creates the contact from an event older than the erasure; a newer event (a new sign-up) may. One outcome line per address on stdout (erased, not-found, dropped for a text that is no address, dead-lettered when Mailjet stayed unavailable). Exit 0: each address was erased or was not in Mailjet; 1: some were not erased; 2: a configuration, credentials or state-directory problem stopped it."
  )
)
