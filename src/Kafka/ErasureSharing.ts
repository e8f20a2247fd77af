/**
 * Erasures shared by `serve`'s group (and read by `replay --topic`) on the suppressions topic, under
 * keys of their own: `erasure:{keyed hash}` → `{"at": ms}`, or `{"at": ms, "unsub": true}` when the
 * contact was unsubscribed when erased: the tombstone (Domain/Tombstones.ts), never the address
 * (its suppression under the address is written null then: compaction removes it). Every worker
 * reads them all from the start and then follows them, so an erasure done by one worker holds for
 * an older event on another worker's partition, and after a restart. Hashes agree across the group because its key is the group's (`groupSecret`).
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { createHmac } from "node:crypto"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { makeTombstones, type Tombstone, type TombstoneSet, Tombstones } from "../Domain/Tombstones.js"
import { MailjetConfig } from "../Mailjet/MailjetConfig.js"
import { readTopicToEnd } from "./DeadLetterTopic.js"
import { type KafkaConnection, producerOptions } from "./KafkaConfig.js"
import { Producer } from "@platformatic/kafka"
import { undecodable } from "./Codecs.js"
import type { SuppressionsUnavailable } from "./KafkaError.js"
import type { Outgoing } from "./SuppressionWriter.js"
import type { Record } from "./TopicReader.js"

export const ERASURE_KEY = "erasure:"
// `unsub` is absent from records written before it, and from those of a contact that was not unsubscribed.
const Shared = Schema.parseJson(Schema.Struct({ at: Schema.Number, unsub: Schema.optional(Schema.Literal(true)) }))
const encode = Schema.encodeSync(Shared)
const decode = Schema.decodeUnknownOption(Shared)

/** Kept as long as the CLI's (Run/TombstoneFile.ts: same variable, same default of 3 years). */
export const retention = Config.duration("MAILJET_TOMBSTONE_RETENTION").pipe(Config.withDefault(Duration.days(3 * 365)))

/**
 * The group's key for its tombstones: MAILJET_TOMBSTONE_KEY when set, else derived from the Mailjet
 * secret key, which every worker of the group and `replay --topic` have. Set MAILJET_TOMBSTONE_KEY
 * before rotating the Mailjet key: tombstones hashed under the old key match nobody.
 */
export const groupSecret = (mailjetSecret: Redacted.Redacted<string>) =>
  Effect.map(Config.option(Config.redacted("MAILJET_TOMBSTONE_KEY")), (own) => {
    const key = Redacted.make(new Uint8Array(
      createHmac("sha256", Redacted.value(Option.getOrElse(own, () => mailjetSecret))).update("signal-mailjet tombstones v1").digest()
    ))
    return () => key
  })

/** The erasure a record of the topic holds, if it holds one younger than `oldest`: [hash, tombstone]. */
export const erasureOf = (m: { readonly key: string; readonly value?: string | null | undefined }, oldest: number): readonly [string, Tombstone] | undefined => {
  if (!m.key.startsWith(ERASURE_KEY) || m.value === undefined || m.value === null) return undefined
  const shared = decode(m.value)
  if (Option.isNone(shared) || shared.value.at < oldest) return undefined
  const { at, unsub } = shared.value
  return [m.key.slice(ERASURE_KEY.length), unsub === true ? { at, unsub } : { at }]
}

/** The record of a tombstone: `unsub` written only when set, as records before it were. */
export const erasureRecord = (topic: string, key: string, t: Tombstone) => ({
  topic,
  key: `${ERASURE_KEY}${key}`,
  value: encode(t.unsub === true ? { at: t.at, unsub: true } : { at: t.at })
})

export const shareErasures = (o: {
  readonly topic: string
  readonly share: (message: Outgoing) => void
  readonly ensure: Effect.Effect<void, SuppressionsUnavailable>
  readonly follow: (handle: (m: Record) => Effect.Effect<void>) => Effect.Effect<void, SuppressionsUnavailable, Scope.Scope>
}) =>
(set: TombstoneSet) =>
  Effect.gen(function*() {
    yield* o.ensure
    const oldest = (yield* Clock.currentTimeMillis) - Duration.toMillis(yield* Effect.orDie(retention))
    // Shared through the worker's one ordered writer, in the background, as its unsubscribes are.
    set.observe((key, t) => o.share(erasureRecord(o.topic, key, t)))
    yield* o.follow((m) =>
      Effect.sync(() => {
        if (undecodable(m) !== undefined) return
        const erasure = erasureOf(m, oldest)
        if (erasure !== undefined) set.learn(erasure[0], erasure[1])
      })
    )
    yield* Effect.logInfo(`erasures: ${set.size()} contacts erased by a deletion request (${o.topic}): their older events are dropped`)
  })

/**
 * `replay --topic`: the group's tombstones, read from its suppressions topic as it is now, so a
 * replayed dead letter older than an erasure any worker did is dropped; an erasure the replay does
 * itself (a dead-lettered deletion request) is written there when the replay ends, for the group.
 */
export const replayTombstones = (connection: KafkaConnection, topic: string) =>
  Layer.scoped(
    Tombstones,
    Effect.gen(function*() {
      const set = makeTombstones(yield* groupSecret((yield* MailjetConfig).secretKey))
      const oldest = (yield* Clock.currentTimeMillis) - Duration.toMillis(yield* retention)
      yield* Stream.runForEach(readTopicToEnd(connection, topic), (r) =>
        Effect.sync(() => {
          const erasure = r.key === undefined ? undefined : erasureOf({ key: r.key, value: r.text }, oldest)
          if (erasure !== undefined) set.learn(erasure[0], erasure[1])
        })).pipe(
          // No such topic: no worker of the group ever ran, so none erased anybody. Any other
          // failure stops the replay: a dead letter must not re-create a contact erased meanwhile.
          Effect.catchIf((e) => /unknown topic/i.test(e.detail), () => Effect.logInfo(`erasures: ${topic} does not exist: no erasure of serve to respect`))
        )
      yield* Effect.logInfo(`erasures: ${set.size()} contacts erased by a deletion request (${topic}): their older events are dropped`)
      const own: Array<{ topic: string; key: string; value: string }> = []
      set.observe((key, t) => own.push(erasureRecord(topic, key, t)))
      yield* Effect.addFinalizer(() =>
        own.length === 0 ? Effect.void : Effect.tryPromise(async () => {
          const producer = new Producer({ ...producerOptions(connection), idempotent: true })
          try {
            await producer.send({ messages: own })
          } finally {
            await producer.close()
          }
        }).pipe(
          Effect.timeout("10 seconds"),
          Effect.catchAll((e) => Effect.logWarning(`erasures: ${own.length} done by this replay were not written to ${topic}, so serve's workers do not know them: ${String(e)}`))
        )
      )
      return set
    })
  ).pipe(Layer.provide(MailjetConfig.layer))
