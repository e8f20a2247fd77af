/**
 * `signal-mailjet contact EMAIL`: what Mailjet holds for one contact (its ID, name, properties
 * from `contactdata`, and its subscription in the configured list from `listrecipient`). The
 * integration guide's last testing step in one command.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { MailjetClient, type MailjetContact, type Subscription } from "../Mailjet/MailjetClient.js"
import { MailjetGateway } from "../Mailjet/MailjetGateway.js"
import { MailjetConfig } from "../Mailjet/MailjetConfig.js"
import { normaliseEmail } from "../Mapping.js"
import { ExitCode, reportSetupErrors, stderr } from "./Options.js"

/** What Mailjet holds for one address; `contact` is None when Mailjet has no such contact. */
export interface ContactView {
  readonly email: string
  readonly listId: number
  readonly contact: Option.Option<{
    readonly contact: MailjetContact
    readonly properties: ReadonlyArray<readonly [string, string]>
    readonly subscription: Subscription
  }>
}

export const describeContact = (email: string) =>
  Effect.gen(function*() {
    // Through the gateway like every call: paced when a host provides a Pacer (the CLI has none).
    const { client, paced } = yield* MailjetGateway.fromContext
    const { listId } = yield* MailjetConfig
    // The list first: with a wrong MAILJET_LIST_ID every contact would read "not in the list".
    const [, found] = yield* Effect.all([paced(client.getList), paced(client.getContact(email))], { concurrency: 2 })
    if (Option.isNone(found)) return { email, listId, contact: Option.none() } satisfies ContactView
    const [properties, subscription] = yield* Effect.all(
      [paced(client.contactData(email)), paced(client.listRecipient(email))],
      { concurrency: 2 }
    )
    return {
      email,
      listId,
      contact: Option.some({ contact: found.value, properties: Option.getOrElse(properties, () => []), subscription })
    } satisfies ContactView
  })

const subscriptionLine = (listId: number, s: Subscription): string => {
  switch (s._tag) {
    case "Subscribed":
      return `list ${listId}: subscribed${s.subscribedAt === "" ? "" : ` since ${s.subscribedAt}`}`
    case "Unsubscribed":
      return `list ${listId}: unsubscribed at ${s.unsubscribedAt === "" ? "(time not given)" : s.unsubscribedAt}${
        s.subscribedAt === "" ? "" : ` (subscribed ${s.subscribedAt})`
      }`
    case "NotInList":
      return `list ${listId}: not in the list`
  }
}

export const formatContact = (view: ContactView): string => {
  if (Option.isNone(view.contact)) return `${view.email}: no such contact in Mailjet for these credentials`
  const { contact, properties, subscription } = view.contact.value
  return [
    `${contact.email}: contact ${contact.id}, created ${contact.createdAt}`,
    `name: ${contact.name === "" ? "(none)" : contact.name}`,
    properties.length === 0 ? "properties: (none)" : "properties:",
    ...properties.map(([name, value]) => `  ${name}: ${value}`),
    subscriptionLine(view.listId, subscription)
  ].join("\n")
}

export const contactJson = (view: ContactView): unknown =>
  Option.match(view.contact, {
    onNone: () => ({ email: view.email, found: false }),
    onSome: ({ contact, properties, subscription }) => ({
      email: contact.email,
      found: true,
      id: contact.id,
      name: contact.name,
      createdAt: contact.createdAt,
      properties: Object.fromEntries(properties),
      list: {
        id: view.listId,
        subscription: subscription._tag === "Subscribed"
          ? "subscribed"
          : subscription._tag === "Unsubscribed"
          ? "unsubscribed"
          : "not-in-list",
        ...(subscription._tag === "NotInList" ? {} : { subscribedAt: subscription.subscribedAt }),
        ...(subscription._tag === "Unsubscribed" ? { unsubscribedAt: subscription.unsubscribedAt } : {})
      }
    })
  })

const failWith = (e: { readonly message: string }) =>
  Effect.zipRight(stderr(`signal-mailjet contact: ${e.message}`), Effect.fail(new ExitCode({ code: 2 })))

export const contactCommand = Command.make(
  "contact",
  {
    email: Args.text({ name: "EMAIL" }).pipe(Args.withDescription("The contact's email address.")),
    json: Options.boolean("json").pipe(Options.withDescription("Print one JSON object instead of text."))
  },
  (o): Effect.Effect<void, ExitCode> =>
    Effect.gen(function*() {
      // Mailjet would answer "no such contact" for any text: say what is wrong before asking it.
      if (normaliseEmail(o.email) === undefined) {
        return yield* failWith({
          message: `${JSON.stringify(o.email)} is not an email address; give the contact's address, e.g. jane.doe@example.com`
        })
      }
      const view = yield* describeContact(o.email.trim())
      yield* Console.log(o.json ? JSON.stringify(contactJson(view)) : formatContact(view))
      // Exit 1 when there is no such contact, so a script can test for it.
      if (Option.isNone(view.contact)) return yield* Effect.fail(new ExitCode({ code: 1 }))
    }).pipe(
      Effect.provide(MailjetClient.layer.pipe(Layer.provideMerge(MailjetConfig.layer))),
      Effect.catchTags({ Unauthorized: failWith, ListNotFound: failWith, RateLimited: failWith, MailjetUnavailable: failWith }),
      reportSetupErrors
    )
).pipe(
  Command.withDescription(
    "Show what Mailjet holds for one contact: its ID, name, properties and its subscription in MAILJET_LIST_ID (subscribed / unsubscribed / not in the list, with times). --json for one JSON object. Exit 0: found; 1: no such contact; 2: not an email address, no such list, or a configuration or Mailjet error."
  )
)
