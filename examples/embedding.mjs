// A host program embedding signal-mailjet: its own configuration source, the library's layer and
// one Signal event. Run it with MAILJET_API_KEY, MAILJET_SECRET_KEY and MAILJET_LIST_ID set
// (and MAILJET_BASE_URL=http://127.0.0.1:<port> to try it against `signal-mailjet simulate`).
import { NodeFileSystem } from "@effect/platform-node"
import { ConfigProvider, Effect, Layer } from "effect"
import { Delivery } from "signal-mailjet"

// The host decides where configuration comes from; here the environment, read by the host itself.
const MailjetLive = Delivery.live().pipe(
  Layer.provide(NodeFileSystem.layer),
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({
    MAILJET_API_KEY: process.env.MAILJET_API_KEY,
    MAILJET_SECRET_KEY: process.env.MAILJET_SECRET_KEY,
    MAILJET_LIST_ID: process.env.MAILJET_LIST_ID,
    MAILJET_BASE_URL: process.env.MAILJET_BASE_URL ?? "https://api.mailjet.com"
  })))
)

const signalEvent = {
  type: "track",
  event: "Signed Up",
  messageId: "6f1d3c1e-8a51-4c4b-9a0e-2f4f1c7b9d10",
  timestamp: "2026-11-26T10:15:00.000Z",
  properties: { method: "email" },
  context: {
    traits: { email: "jane.doe@example.com", first_name: "Jane", last_name: "Doe" },
    consent: { marketing: true }
  }
}

const program = Effect.gen(function*() {
  const delivery = yield* Delivery
  const outcome = yield* delivery.deliver(signalEvent) // fails only with Unauthorized | ListNotFound
  console.log(JSON.stringify(outcome))
  // or: delivery.run(ndjsonLines) → a Stream of results, in input order
})

Effect.runPromise(program.pipe(Effect.provide(MailjetLive))).catch((error) => {
  console.error(error.message ?? String(error))
  process.exitCode = 1
})
