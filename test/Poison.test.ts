/**
 * Input nobody should send (deep, wide, huge, control characters, lone surrogates, bytes that are
 * not UTF-8, emails where the schema wants something else): each line ends as exactly one outcome,
 * nothing throws, a dead letter fits its bound and gives the original back, and no reason repeats
 * an address. Then the same through the built process against the simulator.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Schema, Stream } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { afterAll } from "vitest"
import { Consent } from "../src/Consent.js"
import { prepareLine } from "../src/Delivery/Prepare.js"
import { maskEmails } from "../src/Delivery/Metrics.js"
import { DEAD_LETTER_MAX_BYTES, deadLetterLine, MIN_DEAD_LETTER_BYTES, outcomeLine } from "../src/Domain/Outcome.js"
import { decodeSignalEvent, readSignalLine } from "../src/Domain/SignalEvent.js"
import { safeStringify } from "../src/internal/safeStringify.js"
import { readErrorBody } from "../src/Mailjet/MailjetClient.js"
import { parseBaseUrl } from "../src/Mailjet/MailjetConfig.js"
import { RateLimited } from "../src/Mailjet/MailjetError.js"
import { Mapping } from "../src/Mapping.js"
import { DefaultPreset, parsePreset } from "../src/Preset/Preset.js"
import { boundedLines, deadLetterEvents } from "../src/Run/Ndjson.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { PoisonLine } from "./arbitraries.js"
import { runBin as spawnBin } from "./support/bin.js"
import { simulatorOptions } from "./support/layers.js"
import { SEED_EVENT } from "./support/seed.js"

const mapping = Mapping.make()
const consent = Consent.make()
const AT = new Date("2026-11-29T00:00:00.000Z")

const prepared = (text: string, line = 1) => prepareLine(text, line, consent.resolve, mapping, DefaultPreset.datatypes)

/** What `replay` reads back from one dead-letter record. */
const replayed = (record: string): string =>
  Chunk.unsafeHead(Effect.runSync(Stream.runCollect(deadLetterEvents(Stream.make(record)))))

const Bound = Schema.Literal(MIN_DEAD_LETTER_BYTES, 64 * 1024, DEAD_LETTER_MAX_BYTES)

describe("poison lines (prepareLine → outcomeLine → deadLetterLine → replay)", () => {
  it.prop(
    "law: every line ends as exactly one outcome, and nothing throws",
    { input: PoisonLine },
    ({ input }) => {
      const p = prepared(input.text, 7)
      if (p._tag === "Send") {
        expect(p.text).toBe(input.text)
        return
      }
      expect(p.result.text).toBe(input.text)
      const printed = JSON.parse(outcomeLine(p.result)) as Record<string, unknown>
      expect(printed["line"]).toBe(7)
      expect(["dropped", "dead-lettered"]).toContain(printed["outcome"])
    },
    { fastCheck: { numRuns: 150 } }
  )

  it.prop(
    "law: a dead letter fits its bound and gives back the original line exactly, or names it by reference",
    { input: PoisonLine, bound: Bound },
    ({ bound, input }) => {
      const p = prepared(input.text, 3)
      if (p._tag === "Send" || p.result.outcome.outcome !== "dead-lettered") return
      const record = deadLetterLine(p.result, AT, { maxBytes: bound })!
      expect(Buffer.byteLength(record)).toBeLessThanOrEqual(bound)
      const parsed = JSON.parse(record) as Record<string, unknown>
      expect(parsed).toMatchObject({ error: p.result.outcome.error, line: 3, at: AT.toISOString() })
      if ("omitted" in parsed) {
        expect(parsed["bytes"]).toBe(Buffer.byteLength(input.text))
        expect(parsed).not.toHaveProperty("event")
        expect(parsed).not.toHaveProperty("text")
        // replayed, the record is dead-lettered again, saying where the original is
        const again = prepared(replayed(record))
        expect(again._tag).toBe("Done")
        if (again._tag === "Done") {
          expect(again.result.outcome).toMatchObject({ outcome: "dead-lettered", reason: expect.stringContaining("line 3") })
        }
      } else {
        expect(replayed(record)).toBe(input.text)
      }
    },
    { fastCheck: { numRuns: 150 } }
  )

  it.prop(
    "law: no reason repeats an address from the input unmasked",
    { input: PoisonLine, bound: Bound },
    ({ bound, input }) => {
      const p = prepared(input.text)
      if (p._tag === "Send") return
      const reasons = [JSON.parse(outcomeLine(p.result))["reason"]]
      const record = deadLetterLine(p.result, AT, { maxBytes: bound })
      if (record !== undefined) reasons.push((JSON.parse(record) as Record<string, unknown>)["reason"])
      for (const reason of reasons) {
        for (const email of input.emails) expect(String(reason)).not.toContain(email)
      }
    },
    { fastCheck: { numRuns: 150 } }
  )

  it("the three lines of issue 16: 600 KB of array, 200 KB of \\x01, 10,000 levels: each a dead letter under 1 MB", () => {
    const lines = [
      `[${"1,".repeat(300_000)}1]`,
      "\u0001".repeat(200_000),
      `${"[".repeat(10_000)}${"]".repeat(10_000)}`
    ]
    for (const [i, text] of lines.entries()) {
      const p = prepared(text, i + 1)
      expect(p._tag).toBe("Done")
      if (p._tag !== "Done") continue
      expect(p.result.outcome.outcome).toBe("dead-lettered")
      const record = deadLetterLine(p.result, AT)!
      expect(Buffer.byteLength(record)).toBeLessThanOrEqual(DEAD_LETTER_MAX_BYTES)
      const kept = Buffer.byteLength(text) <= DEAD_LETTER_MAX_BYTES - 1024 && i !== 1 // \x01 escapes six-fold
      expect("omitted" in JSON.parse(record)).toBe(!kept)
      if (kept) expect(replayed(record)).toBe(text)
    }
  })
})

describe("safeStringify", () => {
  it.prop(
    "law: within its limits it writes what JSON.stringify writes",
    { value: Schema.Unknown.annotations({ arbitrary: () => (fc) => fc.jsonValue() }) },
    ({ value }) => {
      expect(safeStringify(value, { maxDepth: 1000, maxLength: 1e9 })).toBe(JSON.stringify(value))
    }
  )

  it("gives up, without throwing, past its depth or its length", () => {
    let deep: unknown = 1
    for (let i = 0; i < 100_000; i++) deep = { a: deep }
    expect(() => JSON.stringify(deep)).toThrow(RangeError)
    expect(safeStringify(deep, { maxDepth: 1000, maxLength: 1e9 })).toBeUndefined()
    const cyclic: Record<string, unknown> = {}
    cyclic["self"] = cyclic
    expect(safeStringify(cyclic, { maxDepth: 1000, maxLength: 1e9 })).toBeUndefined()
    expect(safeStringify(["x".repeat(100)], { maxDepth: 10, maxLength: 50 })).toBeUndefined()
    expect(safeStringify({ a: [1, { b: null }], c: undefined, d: new Date(0) }, { maxDepth: 3, maxLength: 100 }))
      .toBe(JSON.stringify({ a: [1, { b: null }], d: new Date(0) }))
  })

  it("an embedded deliver(value) too deep to keep is dead-lettered by a record that says so", () => {
    let deep: unknown = 1
    for (let i = 0; i < 20_000; i++) deep = [deep]
    const record = deadLetterLine({
      line: 1,
      raw: deep,
      text: undefined,
      messageId: undefined,
      event: undefined,
      outcome: { outcome: "dead-lettered", error: "MalformedEvent", reason: "not a Signal event", attempts: 0 }
    }, AT)!
    expect(JSON.parse(record)).toMatchObject({ omitted: expect.stringContaining("levels deep") })
  })
})

describe("emails masked where a person sees them", () => {
  const Planted = Schema.Struct({ before: Schema.String, after: Schema.String }).annotations({
    arbitrary: () => (fc) =>
      fc.record({
        before: fc.string().map((s) => `${s} `),
        after: fc.string().map((s) => ` ${s}`)
      })
  })

  it.prop(
    "law: no address survives maskEmails, whatever text is around it",
    // Not an address whose local part is asterisks alone: `*@a.aa` masks to `****@a.aa`, which
    // reads the same and so contains it (the law's check cannot tell; a generated case failed CI).
    { text: Planted, email: Schema.String.annotations({ arbitrary: () => (fc) => fc.emailAddress().filter((e) => !/^\*+@/.test(e)) }) },
    ({ email, text }) => {
      const masked = maskEmails(`${text.before}${email}${text.after}`)
      expect(masked).not.toContain(email)
      expect(masked).toContain(`***@`)
    }
  )

  it("Mailjet's own message about a refused address is masked", () => {
    const d = readErrorBody({
      ErrorMessage: "Invalid email address \"victim3@example.com\"",
      ErrorInfo: { Email: "victim3@example.com is not valid" }
    })
    expect(d.message).not.toContain("victim3@example.com")
    expect(d.message).toContain("v***@example.com")
  })

  it("schema reasons name the path and the expected type, never the value (issue 16's four cases)", () => {
    const reasons = [
      { type: "track", event: "Signed Up", traits: "victim2@example.com" },
      ["victim2@example.com"],
      { type: "track", userId: { id: "victim2@example.com" } },
      { type: "identify", context: { traits: "victim2@example.com" } }
    ].map((v) => Either.getLeft(decodeSignalEvent(v)))
    expect(reasons.map((r) => r._tag === "Some" ? r.value : "decoded")).toStrictEqual([
      "not a Signal event: traits: expected an object, got a string",
      "not a Signal event: the event: expected an object, got an array",
      "not a Signal event: userId: expected a string, got an object",
      "not a Signal event: context.traits: expected an object, got a string"
    ])
    // V8 quotes the start of the line in its message: left out before any masking
    expect(readSignalLine("victim2@example.com is not JSON")).toStrictEqual(
      { raw: "victim2@example.com is not JSON", event: Either.left("not JSON: Unexpected token 'v'") }
    )
    const notJson = prepared("victim2@example.com, \"victim2@example.com\"")
    expect(notJson._tag === "Done" && notJson.result.outcome).toMatchObject({
      outcome: "dead-lettered",
      reason: expect.not.stringContaining("victim2")
    })
  })

  it("a preset's schema error is one short line: path, expectation, the bad value", () => {
    const invalid = (text: string) => {
      const p = parsePreset(text, "badpreset.json")
      return Either.isLeft(p) ? p.left.message : "valid"
    }
    expect(invalid(`{"properties":{"signup_method":"string"}}`)).toBe(
      `Invalid preset badpreset.json: properties.signup_method: expected one of str, int, float, bool, datetime; got "string". See "Presets" in the README for the format.`
    )
    // Issue 27 added `erase` to the actions a preset may name.
    expect(invalid(`{"events":{"Signed Up":{"action":"subscribe"}}}`)).toContain(
      `events.Signed Up.action: expected one of consent, addforce, addnoforce, unsub, remove, erase; got "subscribe"`
    )
    expect(invalid(`{"extends":"default","colour":"red"}`)).toContain("colour: is not allowed here")
  })
})

describe("secrets and wording", () => {
  it("a malformed MAILJET_BASE_URL is echoed without its credentials", () => {
    for (const raw of ["https://user:s3cr3t-pw@exa mple.com", "https://user:s3cr3t-pw@host:port/v3", "http://user:s3cr3t-pw@[::1"]) {
      const e = parseBaseUrl(raw)
      expect(Either.isLeft(e)).toBe(true)
      const message = Either.isLeft(e) ? e.left : ""
      expect(message).toMatch(/^not a URL: /)
      expect(message).not.toContain("s3cr3t-pw")
      expect(message).not.toContain("user:")
      expect(message).toContain("***@")
    }
  })

  it("a well-formed MAILJET_BASE_URL with credentials is refused, without echoing them", () => {
    const e = parseBaseUrl("https://user:s3cr3t-pw@api.mailjet.com")
    expect(e).toStrictEqual(Either.left(
      "must not carry credentials (user:password@api.mailjet.com): put the keys in MAILJET_API_KEY and MAILJET_SECRET_KEY"
    ))
  })

  it("RateLimited does not promise a retry, since it is also the reason of a dead letter", () => {
    const m = new RateLimited().message
    expect(m).not.toMatch(/retried/)
    expect(m).toContain("MAILJET_MAX_RPS")
  })
})

// ---- end to end: the built process against the simulator

const KEY = "poison-apikey-T4XB9QW2"
const SECRET = "poison-secret-R8KD3MV6"
const LIST_ID = 7
const tmp = Fs.mkdtempSync(Path.join(Os.tmpdir(), "signal-mailjet-poison-"))
afterAll(() => Fs.rmSync(tmp, { recursive: true, force: true }))

const runBin = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>>) =>
  Effect.promise(() => spawnBin(args, env))
const deliverEnv = (sim: Simulator.SimulatorService) => ({
  MAILJET_API_KEY: KEY,
  MAILJET_SECRET_KEY: SECRET,
  MAILJET_LIST_ID: String(LIST_ID),
  MAILJET_BASE_URL: sim.url,
  MAILJET_MAX_RPS: "1000"
})

layer(
  // This file's own credentials: its output is checked for them.
  Simulator.layer(simulatorOptions({ apiKey: KEY, secretKey: SECRET, lists: [{ id: LIST_ID, name: "Signal" }], seed: 7 })),
  { excludeTestServices: true }
)("deliver over poison (end to end)", (it) => {
  it.effect("a good event, an object 10,000 deep, a good event: 3 outcome lines, the summary, the deep one dead-lettered, exit 1", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      const deep = `${`{"traits":`.repeat(10_000)}"victim9@example.com"${"}".repeat(10_000)}`
      const second = { ...SEED_EVENT, messageId: "second", traits: { email: "second@example.com" } }
      const input = Path.join(tmp, "poison.ndjson")
      const deadLetters = Path.join(tmp, "poison-dead.ndjson")
      Fs.writeFileSync(input, [JSON.stringify(SEED_EVENT), deep, JSON.stringify(second)].join("\n") + "\n")
      const r = yield* runBin(["deliver", input, "--dead-letters", deadLetters], deliverEnv(sim))
      expect(r.stderr).not.toMatch(/internal error|RangeError|Maximum call stack/)
      expect(r.code).toBe(1)
      const outcomes = r.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>)
      expect(outcomes.map((o) => [o["line"], o["outcome"]])).toStrictEqual([
        [1, "delivered"],
        [2, "dead-lettered"],
        [3, "delivered"]
      ])
      expect(outcomes[1]!["reason"]).toBe("not a Signal event: type: is missing")
      expect(r.stderr).toMatch(/3 read, 2 delivered, 0 dropped, 1 dead-lettered, 0 not attempted/)
      expect(`${r.stdout}${r.stderr}`).not.toContain("victim9@example.com")
      const records = Fs.readFileSync(deadLetters, "utf8").split("\n").filter((l) => l !== "")
      expect(records.length).toBe(1)
      expect(JSON.parse(records[0]!)).toMatchObject({ error: "MalformedEvent", line: 2 })
      expect(replayed(records[0]!)).toBe(deep)
      const sent = (yield* sim.requests).filter((q) => q.path.endsWith("/managecontact"))
      expect(sent.map((q) => (q.body as { readonly Email: string }).Email)).toStrictEqual([
        "jane.doe@example.com",
        "second@example.com"
      ])
    }), { timeout: 60_000 })

  it.effect("a 40 MB line between two good events: dead-lettered as LineTooLong by its line, never held, no out-of-memory under the bin's heap", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const second = { ...SEED_EVENT, messageId: "second", traits: { email: "second@example.com" } }
      const input = Path.join(tmp, "huge.ndjson")
      const deadLetters = Path.join(tmp, "huge-dead.ndjson")
      // Three times the bin's old generation would hold if the line were read whole.
      const huge = `{"type":"track","event":"Signed Up","properties":{"note":"${"x".repeat(40 * 1024 * 1024)}"}}`
      Fs.writeFileSync(input, [JSON.stringify(SEED_EVENT), huge, JSON.stringify(second)].join("\n") + "\n")
      const r = yield* runBin(["deliver", input, "--dead-letters", deadLetters], deliverEnv(sim))
      expect(r.stderr).not.toMatch(/heap out of memory|internal error/)
      expect(r.code).toBe(1)
      const outcomes = r.stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>)
      expect(outcomes.map((o) => [o["line"], o["outcome"], o["error"]])).toStrictEqual([
        [1, "delivered", undefined],
        [2, "dead-lettered", "LineTooLong"],
        [3, "delivered", undefined]
      ])
      expect(outcomes[1]!["reason"]).toMatch(new RegExp(`^the line is ${Buffer.byteLength(huge)} bytes, over the bound on one line`))
      const records = Fs.readFileSync(deadLetters, "utf8").split("\n").filter((l) => l !== "")
      expect(records.length).toBe(1)
      expect(Buffer.byteLength(records[0]!)).toBeLessThan(4096)
      expect(JSON.parse(records[0]!)).toMatchObject({ error: "LineTooLong", line: 2 })
      Fs.rmSync(input)
    }), { timeout: 60_000 })
})

describe("boundedLines", () => {
  const Lines = Schema.Struct({
    lines: Schema.Array(Schema.String.pipe(Schema.filter((l) => !l.includes("\n")))).pipe(Schema.maxItems(12)),
    cuts: Schema.Array(Schema.Int.pipe(Schema.between(0, 400))).pipe(Schema.maxItems(8)),
    maxBytes: Schema.Int.pipe(Schema.between(1, 40))
  })
  it.prop(
    "law: however the text is cut into chunks, every line comes out once, in order, whole up to the bound and as its size past it",
    [Lines],
    ([{ cuts, lines, maxBytes }]) => {
      const text = lines.map((l) => `${l}\n`).join("")
      const at = [...new Set(cuts.filter((c) => c < text.length))].sort((a, b) => a - b)
      const chunks = [0, ...at].map((from, i) => text.slice(from, [...at, text.length][i]))
      const out = Effect.runSync(Stream.runCollect(boundedLines(Stream.fromIterable(chunks), maxBytes)))
      const expected = lines.map((l) => {
        const line = l.replace(/\r$/, "")
        return Buffer.byteLength(l) > maxBytes ? { tooLong: Buffer.byteLength(l) } : line
      })
      // The text ends with a newline (or is empty), so an empty last line follows: delivery skips it as blank.
      expect(Chunk.toReadonlyArray(out)).toStrictEqual([...expected, ""])
    },
    { fastCheck: { numRuns: 300 } }
  )
})
