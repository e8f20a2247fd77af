// A host program like the README's (examples/embedding.mjs), installed the same way, that delivers
// the Signal event given as its argument (JSON): Package.test.ts runs it for the consent story.
import { NodeFileSystem } from "@effect/platform-node"
import { ConfigProvider, Effect, Layer } from "effect"
import { Delivery } from "signal-mailjet"

const MailjetLive = Delivery.live().pipe(
  Layer.provide(NodeFileSystem.layer),
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({
    MAILJET_API_KEY: process.env.MAILJET_API_KEY,
    MAILJET_SECRET_KEY: process.env.MAILJET_SECRET_KEY,
    MAILJET_LIST_ID: process.env.MAILJET_LIST_ID,
    MAILJET_BASE_URL: process.env.MAILJET_BASE_URL
  })))
)

const program = Effect.gen(function*() {
  const delivery = yield* Delivery
  console.log(JSON.stringify(yield* delivery.deliver(JSON.parse(process.argv[2]))))
})

Effect.runPromise(program.pipe(Effect.provide(MailjetLive))).catch((error) => {
  console.error(error.message ?? String(error))
  process.exitCode = 1
})
