/**
 * Schema failures as short lines a person can act on: `traits: expected an object, got a string`,
 * instead of Effect's tree of AST names.
 */
import type * as AST from "effect/SchemaAST"
import type * as ParseResult from "effect/ParseResult"

export interface FormatOptions {
  /**
   * Whether a failing value may be shown. Never for events: any value there can be an email.
   * A preset is the user's own configuration, so its bad values are shown (short scalars only).
   */
  readonly showValues: boolean
  /** Where a path starts, for a failure at the root: "the event", "the preset". */
  readonly root: string
}

/** The longest text returned: a few problems are enough to fix the first of them. */
const MAX_LENGTH = 400

export const formatParseError = (error: ParseResult.ParseError, options: FormatOptions): string => {
  const lines = leaves(error.issue).map(({ issue, path }) =>
    `${path.length === 0 ? options.root : renderPath(path)}: ${problem(issue, options)}`
  )
  const text = lines.join("; ")
  return text.length <= MAX_LENGTH ? text : `${text.slice(0, MAX_LENGTH - 1)}…`
}

type Leaf =
  | { readonly _tag: "Type"; readonly ast: AST.AST; readonly actual: unknown }
  | { readonly _tag: "Missing" | "Unexpected" | "Forbidden" }

interface Located {
  readonly issue: ParseResult.ParseIssue
  readonly path: ReadonlyArray<PropertyKey>
}

/** Below refinements and transformations: the issue that says what was wrong. */
const unwrap = (issue: ParseResult.ParseIssue): ParseResult.ParseIssue => {
  let i = issue
  while (i._tag === "Refinement" || i._tag === "Transformation") i = i.issue
  return i
}

/**
 * The innermost issues with their paths. A union that failed on the value's type is one issue
 * (`expected one of …`); one that failed inside a member it matched reports only that inside.
 * The tree is as deep as the schema, never as the input, but it is walked with a stack anyway.
 */
const leaves = (root: ParseResult.ParseIssue): Array<{ readonly issue: Leaf; readonly path: ReadonlyArray<PropertyKey> }> => {
  const out: Array<{ readonly issue: Leaf; readonly path: ReadonlyArray<PropertyKey> }> = []
  const stack: Array<Located> = [{ issue: root, path: [] }]
  while (stack.length > 0 && out.length < 10) {
    const { issue, path } = stack.pop()!
    switch (issue._tag) {
      case "Pointer":
        stack.push({ issue: issue.issue, path: [...path, ...(Array.isArray(issue.path) ? issue.path : [issue.path])] })
        break
      case "Refinement":
      case "Transformation":
        stack.push({ issue: issue.issue, path })
        break
      case "Composite": {
        const all = (Array.isArray(issue.issues) ? issue.issues : [issue.issues]) as ReadonlyArray<ParseResult.ParseIssue>
        const inner = issue.ast._tag === "Union" ? all.filter((i) => unwrap(i)._tag !== "Type") : all
        if (inner.length === 0) {
          out.push({ issue: { _tag: "Type", ast: issue.ast, actual: issue.actual }, path })
          break
        }
        // pushed in reverse so they come out in the schema's order
        for (let i = inner.length - 1; i >= 0; i--) stack.push({ issue: inner[i]!, path })
        break
      }
      case "Type":
        out.push({ issue: { _tag: "Type", ast: issue.ast, actual: issue.actual }, path })
        break
      default:
        out.push({ issue: { _tag: issue._tag }, path })
    }
  }
  return out
}

const renderPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((k, i) =>
    typeof k === "number" ? `[${k}]` : `${i === 0 ? "" : "."}${typeof k === "symbol" ? String(k) : k}`
  ).join("")

const problem = (issue: Leaf, options: FormatOptions): string => {
  switch (issue._tag) {
    case "Missing":
      return "is missing"
    case "Unexpected":
      return "is not allowed here"
    case "Forbidden":
      return "cannot be checked"
    case "Type": {
      const want = expected(issue.ast)
      // a list of choices ends at a semicolon, so the value read after it is not taken for one more
      return `expected ${want}${want.includes(",") ? ";" : ","} got ${got(issue.actual, options.showValues)}`
    }
  }
}

/** What a schema accepts, in words. */
export const expected = (ast: AST.AST): string => {
  switch (ast._tag) {
    case "Literal":
      return ast.literal === null ? "null" : String(ast.literal)
    case "Union": {
      // null and no value are how optional fields are written: the value wanted is the rest
      const wanted = ast.types.filter((t) => !(t._tag === "UndefinedKeyword" || (t._tag === "Literal" && t.literal === null)))
      const types = wanted.length === 0 ? ast.types : wanted
      if (types.length === 1) return expected(types[0]!)
      if (types.every((t) => t._tag === "Literal")) return `one of ${types.map(expected).join(", ")}`
      return types.map(expected).join(" or ")
    }
    case "StringKeyword":
    case "TemplateLiteral":
      return "a string"
    case "NumberKeyword":
      return "a number"
    case "BooleanKeyword":
      return "a boolean"
    case "TypeLiteral":
      return "an object"
    case "TupleType":
      return "an array"
    case "UndefinedKeyword":
      return "no value"
    case "Refinement":
      return expected(ast.from)
    case "Transformation":
      return expected(ast.to)
    default:
      return "another value"
  }
}

/** The kind of a value, and with `showValues` a short scalar itself. */
export const got = (actual: unknown, showValues: boolean): string => {
  if (actual === null) return "null"
  if (Array.isArray(actual)) return "an array"
  switch (typeof actual) {
    case "object":
      return "an object"
    case "string":
      return showValues && actual.length <= 40 ? JSON.stringify(actual) : "a string"
    case "number":
    case "boolean":
      return showValues ? String(actual) : `a ${typeof actual}`
    case "undefined":
      return "no value"
    default:
      return `a ${typeof actual}`
  }
}
