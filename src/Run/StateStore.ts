/**
 * What the CLI keeps between runs, in one directory: keyed records with times, one file per kind
 * (`tombstones.json`: erasures, keyed by keyed hashes made with the state's secret key, so their
 * key is never the address; `suppressions-{list}.json`: the list's unsubscribed contacts by
 * contact ID, their addresses in the value, see Run/SnapshotFile), and that secret key.
 *
 * The directory: `MAILJET_STATE_DIR`, else `$XDG_STATE_HOME/signal-mailjet`, else
 * `~/.local/state/signal-mailjet` (from `HOME`). Nothing is created until something is written: a
 * run that erases nobody never touches the disk. A file is replaced whole, never changed in place: a
 * temporary file beside it, then a rename, so a reader (or a run killed mid-write) sees the old
 * file or the new one, never half of one.
 */
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { randomBytes } from "node:crypto"

/** One record: a key (a keyed hash, never an address), when, and what the kind keeps beside them. */
export interface StoredRecord {
  readonly key: string
  /** Epoch milliseconds. */
  readonly at: number
  readonly value?: unknown
}

export class StateUnusable extends Schema.TaggedError<StateUnusable>()("StateUnusable", {
  path: Schema.String,
  problem: Schema.String
}) {
  override get message(): string {
    return `Cannot use the state directory (${this.path}): ${this.problem}. Set MAILJET_STATE_DIR to a directory this user may write (README: "Deletion requests")`
  }
}

const FORMAT = "signal-mailjet-state/1"
const SECRET_FILE = "secret.key"
const SECRET_BYTES = 32

const File = Schema.parseJson(Schema.Struct({
  format: Schema.Literal(FORMAT),
  records: Schema.Array(Schema.Struct({ key: Schema.String, at: Schema.DateFromString, value: Schema.optional(Schema.Unknown) }))
}))
const decodeFile = Schema.decodeUnknownEither(File)
const encodeFile = Schema.encodeSync(File)

export class StateStore extends Context.Tag("signal-mailjet/StateStore")<StateStore, {
  /** The directory, or None when none can be named (no MAILJET_STATE_DIR, XDG_STATE_HOME or HOME). */
  readonly dir: Option.Option<string>
  /**
   * This state's secret key: 32 random bytes in `secret.key` (mode 600), made on first use;
   * synchronous, since a keyed hash is made on the per-event path. Throws StateUnusable.
   */
  readonly secret: () => Redacted.Redacted<Uint8Array>
  /** The records of a kind; none when its file does not exist yet. */
  readonly read: (kind: string) => Effect.Effect<ReadonlyArray<StoredRecord>, StateUnusable>
  /** Replaces the records of a kind, atomically (a temporary file, then a rename). */
  readonly write: (kind: string, records: Iterable<StoredRecord>) => Effect.Effect<void, StateUnusable>
}>() {
  /** In `dir` (None: nothing can be written; reads find nothing). */
  static readonly make = (dir: Option.Option<string>): typeof StateStore.Service => {
    const where = (kind: string) => Option.map(dir, (d) => Path.join(d, `${kind}.json`))
    const unusable = (path: string, e: unknown) => new StateUnusable({ path, problem: e instanceof Error ? e.message : String(e) })
    const noDir = () => new StateUnusable({ path: "(none)", problem: "neither MAILJET_STATE_DIR, XDG_STATE_HOME nor HOME is set" })
    let secret: Redacted.Redacted<Uint8Array> | undefined
    return {
      dir,
      secret: () => {
        if (secret !== undefined) return secret
        if (Option.isNone(dir)) throw noDir()
        const path = Path.join(dir.value, SECRET_FILE)
        try {
          Fs.mkdirSync(dir.value, { recursive: true, mode: 0o700 })
          // Exclusive: two runs that start together agree on the first key written.
          try {
            Fs.writeFileSync(path, randomBytes(SECRET_BYTES), { flag: "wx", mode: 0o600 })
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
          }
          const key = Fs.readFileSync(path)
          if (key.length !== SECRET_BYTES) throw new Error(`${SECRET_FILE} holds ${key.length} bytes, not ${SECRET_BYTES}`)
          return secret = Redacted.make(new Uint8Array(key))
        } catch (e) {
          throw unusable(path, e)
        }
      },
      read: (kind) =>
        Option.match(where(kind), {
          onNone: () => Effect.succeed([]),
          onSome: (path) =>
            Effect.flatMap(
              Effect.try({
                try: () => Fs.existsSync(path) ? Fs.readFileSync(path, "utf8") : undefined,
                catch: (e) => unusable(path, e)
              }),
              (text) => {
                if (text === undefined) return Effect.succeed([])
                const decoded = decodeFile(text)
                return decoded._tag === "Left"
                  ? Effect.fail(unusable(path, `it is not a state file of this version (${FORMAT}); move it away`))
                  : Effect.succeed(decoded.right.records.map((r) => ({ ...r, at: r.at.getTime() })))
              }
            )
        }),
      write: (kind, records) =>
        Option.match(where(kind), {
          onNone: () => Effect.fail(noDir()),
          onSome: (path) =>
            Effect.try({
              try: () => {
                const text = encodeFile({ format: FORMAT, records: Array.from(records, (r) => ({ ...r, at: new Date(r.at) })) })
                Fs.mkdirSync(Path.dirname(path), { recursive: true, mode: 0o700 })
                const temp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`
                try {
                  Fs.writeFileSync(temp, `${text}\n`, { mode: 0o600 })
                  Fs.renameSync(temp, path)
                } finally {
                  Fs.rmSync(temp, { force: true })
                }
              },
              catch: (e) => unusable(path, e)
            })
        })
    }
  }

  /** The directory from the environment (see the module's comment). */
  static readonly layer = Layer.effect(
    StateStore,
    Effect.map(
      Config.all({
        state: Config.option(Config.nonEmptyString("MAILJET_STATE_DIR")),
        xdg: Config.option(Config.nonEmptyString("XDG_STATE_HOME")),
        home: Config.option(Config.nonEmptyString("HOME"))
      }),
      ({ home, state, xdg }) =>
        StateStore.make(Option.orElse(state, () =>
          Option.orElse(
            Option.map(xdg, (x) => Path.join(x, "signal-mailjet")),
            () => Option.map(home, (h) => Path.join(h, ".local", "state", "signal-mailjet"))
          )))
    )
  )
}
