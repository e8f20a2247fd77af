/**
 * The command line checked before @effect/cli parses it, for the mistakes it blames on the wrong
 * word: `deliver --dryrun FILE` was "unknown argument: FILE", `--log-level verbose` "unknown
 * argument: verbose", without the levels.
 */
import * as Command from "@effect/cli/Command"
import type * as Usage from "@effect/cli/Usage"
import * as HashSet from "effect/HashSet"
import * as Option from "effect/Option"

export const LOG_LEVELS = ["all", "trace", "debug", "info", "warning", "error", "fatal", "none"] as const

/** @effect/cli's built-in options of every command, and whether each takes a value. */
const BUILT_INS: ReadonlyArray<readonly [string, boolean]> = [
  ["--log-level", true],
  ["--help", false],
  ["-h", false],
  ["--version", false],
  ["--wizard", false],
  ["--completions", true]
]

/** The options a usage names (arguments are named `<FILE>`), and whether each takes a value. */
const optionsOf = (usage: Usage.Usage, into: Map<string, boolean>): Map<string, boolean> => {
  switch (usage._tag) {
    case "Named":
      for (const name of usage.names) if (name.startsWith("-")) into.set(name, Option.isSome(usage.acceptedValues))
      return into
    case "Optional":
    case "Repeated":
      return optionsOf(usage.usage, into)
    case "Alternation":
    case "Concat":
      return optionsOf(usage.right, optionsOf(usage.left, into))
    default:
      return into
  }
}

/** Edit distance (insertions, deletions, substitutions), for "did you mean". */
export const distance = (a: string, b: string): number => {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    row = next
  }
  return row[b.length]!
}

/** The nearest of `names` when it is near enough to be a typo of `word`. */
export const closest = (word: string, names: Iterable<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = Infinity
  for (const name of names) {
    const d = distance(word, name)
    if (d < bestDistance) [best, bestDistance] = [name, d]
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 4)) ? best : undefined
}

const suggest = (word: string, names: Iterable<string>) => {
  const near = closest(word, names)
  return near === undefined ? "" : ` (did you mean ${near}?)`
}

export const commandName = (c: Command.Command<any, any, any, any>): string => HashSet.values(Command.getNames(c)).next().value as string

/**
 * The first mistake in `args` (what follows the program), as a line for stderr: an unknown command,
 * an unknown option of the command, or `--log-level` without a level. Undefined when there is none,
 * or nothing to check (`--help`, `--version`).
 */
export const argvProblem = (
  program: string,
  subcommands: ReadonlyArray<Command.Command<any, any, any, any>>,
  args: ReadonlyArray<string>
): string | undefined => {
  const first = args[0]
  if (first === undefined || first.startsWith("-")) return undefined
  const command = subcommands.find((c) => commandName(c) === first)
  if (command === undefined) {
    return `${program}: unknown command ${first}${suggest(first, subcommands.map(commandName))}; ${program} --help lists the commands`
  }
  const options = optionsOf(Command.getUsage(command), new Map(BUILT_INS))
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") return undefined
    if (!arg.startsWith("-") || arg === "-") continue
    const [name, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined]
    const takesValue = options.get(name.toLowerCase()) // @effect/cli reads names case-insensitively
    if (takesValue === undefined) {
      return `${program} ${first}: unknown option ${name}${suggest(name, options.keys())}; ${program} ${first} --help lists its options`
    }
    if (!takesValue) continue
    const value = inline ?? args[++i]
    if (name === "--log-level" && !(LOG_LEVELS as ReadonlyArray<string | undefined>).includes(value)) {
      return `${program} ${first}: --log-level ${value === undefined ? "needs a level" : `${value} is not a level`}: use one of ${LOG_LEVELS.join(", ")}`
    }
  }
  return undefined
}
