/**
 * The hand-over as a fence, not only a deadline. A worker about to read partitions first claims
 * them on the group's hand-over topic, `delivery-{id}-handover` (compacted; one record per
 * partition and worker, read back so its follower has read everything written before it), and
 * once it has drained them and its last commit landed it releases them (tombstones). A worker gaining a partition reads it only when no
 * other live member of the group still claims it: a previous owner whose drain outlives the
 * deadline delays the hand-over instead of causing a re-send. A claim by a worker that is no longer
 * in the group is void: it left after its last commit, or it crashed, and a dead process sends
 * nothing. (Its record stays on the compacted topic; nobody else writes under its key, so a claim
 * can never be cleared by a worker that mistook its owner for gone.)
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { SuppressionsUnavailable } from "./KafkaError.js"
import type { Outgoing } from "./SuppressionWriter.js"
import type { Record } from "./TopicReader.js"

export const FENCE_KEY = "handover:"

const Claim = Schema.parseJson(Schema.Struct({
  partition: Schema.Number,
  generation: Schema.Number,
  /** The claimer's member id in the group: it holds only while that member is in it. */
  member: Schema.String,
  /**
   * How long after a group change its claimer may take to release it (drain, last commit, release),
   * by its own MAILJET_SHUTDOWN_TIMEOUT: a new owner waits for a live claimer that long at least.
   */
  within: Schema.optional(Schema.Number)
}))
const encodeClaim = Schema.encodeSync(Claim)
const decodeClaim = Schema.decodeUnknownOption(Claim)

export interface HeldClaim {
  readonly partition: number
  readonly generation: number
  readonly member: string
  readonly within?: number | undefined
  readonly key: string
}

export interface HandOverFence {
  /**
   * This worker reads `partitions` in `generation` as `member`: stored on every in-sync replica and
   * read back, so every claim stored before it is known here. Its other claims are released.
   */
  readonly claim: (
    partitions: ReadonlyArray<number>,
    generation: number,
    member: string,
    /** How long after a group change this worker may take to release them (unsaid: the reader's own cap). */
    within?: number
  ) => Effect.Effect<void, SuppressionsUnavailable>
  /** What it read is done and committed: every claim of this worker is released. */
  readonly release: Effect.Effect<void, SuppressionsUnavailable>
  /** Other workers' claims on these partitions, as read so far. */
  readonly held: (partitions: ReadonlyArray<number>) => ReadonlyArray<HeldClaim>
  /** The follower's hook for records under FENCE_KEY. */
  readonly learn: (m: Record) => void
}

/** Whether `claims` still fence: those of members in the group (undefined: the broker did not say, so all fence). */
export const fencing = (claims: ReadonlyArray<HeldClaim>, members: ReadonlySet<string> | undefined): ReadonlyArray<HeldClaim> =>
  members === undefined ? claims : claims.filter((c) => members.has(c.member))

export const makeHandOverFence = (o: {
  readonly topic: string
  /** This worker's own claims are not fences for it. */
  readonly origin: string
  /** Stores (acks all) `readBack` and `plain`, then waits until this worker's follower has read `readBack` back. */
  readonly write: (readBack: ReadonlyArray<Outgoing>, plain: ReadonlyArray<Outgoing>) => Effect.Effect<void, SuppressionsUnavailable>
}): HandOverFence => {
  const key = (partition: number) => `${FENCE_KEY}${partition}:${o.origin}`
  /** Others' claims by key. */
  const others = new Map<string, HeldClaim>()
  let mine = new Set<number>()
  const tombstones = (partitions: Iterable<number>): Array<Outgoing> => Array.from(partitions, (p) => ({ topic: o.topic, key: key(p), value: null }))
  return {
    claim: (partitions, generation, member, within) =>
      Effect.suspend(() => {
        const gone = [...mine].filter((p) => !partitions.includes(p))
        return o.write(
          partitions.map((partition) => ({ topic: o.topic, key: key(partition), value: encodeClaim({ partition, generation, member, ...(within === undefined ? {} : { within }) }) })),
          tombstones(gone)
        ).pipe(Effect.zipRight(Effect.sync(() => {
          mine = new Set(partitions)
        })))
      }),
    release: Effect.suspend(() =>
      mine.size === 0 ? Effect.void : Effect.zipRight(
        // Stored is enough: nobody here waits to read its own release.
        o.write([], tombstones(mine)),
        Effect.sync(() => {
          mine = new Set()
        })
      )
    ),
    held: (partitions) => [...others.values()].filter((c) => partitions.includes(c.partition)),
    learn: (m) => {
      if (m.key.endsWith(`:${o.origin}`)) return
      if (m.value === undefined || m.value === null) {
        others.delete(m.key)
        return
      }
      const claim = decodeClaim(m.value)
      if (Option.isSome(claim)) others.set(m.key, { ...claim.value, key: m.key })
    }
  }
}
