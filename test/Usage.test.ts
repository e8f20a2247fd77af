/**
 * The edges of the command line, as a user meets them: no command, a misspelt option, a log level
 * that does not exist, `--from-line` past the end, and help that fits a terminal. The built CLI
 * (dist/bin.js) runs as a process; `deliver` runs against the simulator over real HTTP.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { argvProblem, commandName, distance, LOG_LEVELS } from "../src/Cli/Argv.js"
import { subcommands } from "../src/Cli/Cli.js"
import { renderHelp, wrap } from "../src/Cli/Help.js"
import * as Simulator from "../src/Simulator/Simulator.js"
import { runBin } from "./support/bin.js"
import { KEY, SECRET, simulatorOptions } from "./support/layers.js"

const ESC = "\u001b["
const COMMANDS = ["deliver", "serve", "check", "replay", "simulate", "demo", "contact", "erase"]

describe("no command", () => {
  it("prints the project's help, plain and within 80 columns, and exits 2 naming the commands", async () => {
    for (const env of [{}, { NO_COLOR: "" }]) {
      const r = await runBin([], env)
      expect(r.code).toBe(2)
      expect(r.stdout).not.toContain(ESC)
      expect(r.stdout).toMatch(/^USAGE\n\nsignal-mailjet <command> \[options\] \[arguments\]\n/)
      for (const command of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^${command}$`, "m"))
      for (const line of r.stdout.split("\n")) expect(line.length, line).toBeLessThanOrEqual(80)
      expect(r.stderr).toBe(`signal-mailjet: give a command: ${COMMANDS.join(", ")}\n`)
    }
  })
})

describe("--help", () => {
  it("every command's help: within 80 columns, without @effect/cli's --wizard and --completions or its filler", async () => {
    for (const command of COMMANDS) {
      const r = await runBin([command, "--help"], {})
      expect(r.code).toBe(0)
      for (const line of r.stdout.split("\n")) expect(line.length, `${command}: ${line}`).toBeLessThanOrEqual(80)
      expect(r.stdout, command).not.toContain("--wizard")
      expect(r.stdout, command).not.toContain("--completions")
      expect(r.stdout, command).not.toMatch(/An existing file|A file that must not exist/)
      expect(r.stdout, command).toMatch(/^--log-level all \| trace \| debug \| info \| warning \| error \| fatal \| none$/m)
    }
  })

  it("replay's argument is described by its own words alone; --max-line-bytes gives its default", async () => {
    const replay = (await runBin(["replay", "--help"], {})).stdout
    expect(replay).toContain("<DEAD_LETTER_FILE>\n\n  A dead-letter file written by --dead-letters.\n")
    for (const command of ["deliver", "replay"]) {
      const text = (await runBin([command, "--help"], {})).stdout.replaceAll(/\s+/g, " ")
      expect(text).toContain("--max-line-bytes integer A line longer than this many bytes is not read")
      expect(text).toContain("(default 1048576: 1 MiB)")
    }
  })

  const Word = Schema.String.annotations({
    arbitrary: () => (fc) => fc.oneof(fc.constantFrom("", "--dead-letters", "x".repeat(90)), fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/\s/.test(s)))
  })
  const Line = Schema.Struct({ indent: Schema.Int.pipe(Schema.between(0, 6)), words: Schema.Array(Word) })
  it.prop("law: wrapping keeps every word in order, each line's indent, and fits the width unless one word alone is wider", {
    lines: Schema.Array(Line),
    width: Schema.Int.pipe(Schema.between(20, 120))
  }, ({ lines, width }) => {
    const text = lines.map(({ indent, words }) => " ".repeat(indent) + words.join(" ")).join("\n")
    const wrapped = wrap(text, width, "signal-mailjet")
    expect(wrapped.split(/\s+/).filter((w) => w !== "")).toStrictEqual(text.split(/\s+/).filter((w) => w !== ""))
    for (const line of wrapped.split("\n")) {
      if (line.length > width) expect(line.trim(), line).not.toContain(" ")
    }
    // Each input line starts a line of the output at its own indent.
    const starts = lines.map(({ indent, words }) => " ".repeat(indent) + (words[0] ?? ""))
    const outLines = wrapped.split("\n")
    let at = 0
    for (const start of starts) {
      while (at < outLines.length && !outLines[at]!.startsWith(start)) at++
      expect(at, `no line starts with ${JSON.stringify(start)}`).toBeLessThan(outLines.length)
      at++
    }
  })
})

describe("the command line, before @effect/cli", () => {
  it("a misspelt option is named, with the nearest one, not the file after it; exit 2 and nothing run", async () => {
    const r = await runBin(["deliver", "--dryrun", "examples/events.ndjson"], {})
    expect(r.code).toBe(2)
    expect(r.stdout).toBe("")
    expect(r.stderr).toBe("signal-mailjet deliver: unknown option --dryrun (did you mean --dry-run?); signal-mailjet deliver --help lists its options\n")
    const c = await runBin(["contact", "--jsn", "a@example.com"], {})
    expect(c.code).toBe(2)
    expect(c.stderr).toContain("unknown option --jsn (did you mean --json?)")
    const command = await runBin(["delivr", "x.ndjson"], {})
    expect(command.code).toBe(2)
    expect(command.stderr).toBe("signal-mailjet: unknown command delivr (did you mean deliver?); signal-mailjet --help lists the commands\n")
  })

  it("--log-level with a level that does not exist lists the levels; exit 2", async () => {
    for (const args of [["deliver", "--log-level", "verbose", "x.ndjson"], ["deliver", "--log-level=verbose", "x.ndjson"]]) {
      const r = await runBin(args, {})
      expect(r.code).toBe(2)
      expect(r.stderr).toBe(
        "signal-mailjet deliver: --log-level verbose is not a level: use one of all, trace, debug, info, warning, error, fatal, none\n"
      )
    }
  })

  // The options each command's help lists, and whether a value follows: what a user would type.
  const listed = (name: string): ReadonlyArray<readonly [string, boolean]> => {
    const command = subcommands.find((c) => commandName(c) === name)!
    return renderHelp("p", { name, command }, subcommands, false, 1000).split("\n").flatMap((line) => {
      const m = /^(--[a-z-]+)( \S.*)?$/.exec(line)
      return m === null ? [] : [[m[1]!, m[2] !== undefined] as const]
    })
  }
  const Command = Schema.Literal(...COMMANDS)
  it.prop("law: every option a command has, and each log level, passes; an option one letter off is named unknown, with an option one letter from it", {
    command: Command,
    pick: Schema.Int.pipe(Schema.between(0, 1000)),
    level: Schema.Literal(...LOG_LEVELS),
    cut: Schema.Int.pipe(Schema.between(0, 1000))
  }, ({ command, cut, level, pick }) => {
    expect(argvProblem("p", subcommands, [command, "--log-level", level])).toBeUndefined()
    expect(argvProblem("p", subcommands, [command, `--log-level=${level}`, "--help"])).toBeUndefined()
    const options = listed(command)
    expect(options.length).toBeGreaterThan(0)
    for (const [option, value] of options) {
      const given = option === "--log-level" ? level : "1"
      expect(argvProblem("p", subcommands, value ? [command, option, given, "x"] : [command, option, "x"]), option).toBeUndefined()
    }
    const [option] = options[pick % options.length]!
    if (option === "--log-level") return
    const at = 2 + (cut % (option.length - 2))
    const typo = option.slice(0, at) + option.slice(at + 1)
    const all = [...options.map(([o]) => o), "--log-level", "--help", "--version"]
    if (all.includes(typo) || typo === "--") return
    const problem = argvProblem("p", subcommands, [command, typo, "file.ndjson"])
    const m = new RegExp(`^p ${command}: unknown option ${typo} \\(did you mean (--[a-z-]+)\\?\\)`).exec(problem ?? "")
    expect(m, problem).not.toBeNull()
    expect(distance(typo, m![1]!)).toBe(1)
  })
})

describe("MAILJET_LIST_ID as a user mistypes it", () => {
  it("0 and a number past 2^53 are refused, the variable named once, exit 2, before Mailjet is called", async () => {
    for (const id of ["0", "99999999999999999999"]) {
      const r = await runBin(["contact", "a@example.com"], {
        MAILJET_API_KEY: "k",
        MAILJET_SECRET_KEY: "s",
        MAILJET_LIST_ID: id,
        // Nothing listens here: a call would fail differently.
        MAILJET_BASE_URL: "http://127.0.0.1:9"
      })
      expect(r.code).toBe(2)
      expect(r.stdout).toBe("")
      expect(r.stderr).toBe(
        `signal-mailjet: configuration error:\n  MAILJET_LIST_ID: must be a positive integer, at most 9007199254740991 (got "${id}")\nSee "Configuration" in the README.\n`
      )
    }
  })
})

// ---- --from-line past the end, against the simulator

const env = (sim: Simulator.SimulatorService) => ({
  MAILJET_API_KEY: KEY,
  MAILJET_SECRET_KEY: SECRET,
  MAILJET_LIST_ID: "1",
  MAILJET_BASE_URL: sim.url,
  MAILJET_MAX_RPS: "1000"
})

layer(Simulator.layer(simulatorOptions()), { excludeTestServices: true })("--from-line past the end", (it) => {
  it.effect("warns that the input ends before it, sends nothing, exits 2; on a file, on stdin and in a dry run", () =>
    Effect.gen(function*() {
      const sim = yield* Simulator.Simulator
      yield* sim.reset
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "from-line-"))
      const file = Path.join(dir, "events.ndjson")
      const lines = Fs.readFileSync("examples/events.ndjson", "utf8")
      Fs.writeFileSync(file, `${lines.trimEnd()}\n\n`)
      const last = lines.trimEnd().split("\n").length
      const runs = [
        { args: ["deliver", "--from-line", "50", file], stdin: "", where: file },
        { args: ["deliver", "--from-line", "50"], stdin: lines, where: "the input" },
        { args: ["deliver", "--dry-run", "--from-line", "50", file], stdin: "", where: file }
      ]
      for (const { args, stdin, where } of runs) {
        const r = yield* Effect.promise(() => runBin(args, env(sim), stdin))
        expect(r.code, r.stderr).toBe(2)
        expect(r.stdout).toBe("")
        expect(r.stderr).toContain(`signal-mailjet deliver: --from-line 50 is past the end of ${where}, whose last event is on line ${last}: nothing was sent\n`)
      }
      expect((yield* sim.requests).filter((q) => q.path.includes("managecontact"))).toStrictEqual([])
      // The last line itself is not past the end.
      const one = yield* Effect.promise(() => runBin(["deliver", "--from-line", String(last), file], env(sim)))
      expect(one.code, one.stderr).toBe(0)
      expect(one.stdout.trim().split("\n").map((l) => (JSON.parse(l) as { line: number }).line)).toStrictEqual([last])
      expect(one.stderr).not.toContain("past the end")
    }))
})
