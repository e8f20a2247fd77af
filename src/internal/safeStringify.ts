/**
 * JSON.stringify for values nobody checked: it recurses once per level, so a value 10,000 levels
 * deep throws RangeError, and a big one is built whole before anyone can measure it. This one walks
 * with its own stack and gives up (undefined) past `maxDepth` levels or `maxLength` characters.
 */

export interface SafeStringifyLimits {
  readonly maxDepth: number
  readonly maxLength: number
}

type Frame =
  | { readonly kind: "array"; readonly items: ReadonlyArray<unknown>; index: number }
  | { readonly kind: "object"; readonly record: Readonly<Record<string, unknown>>; readonly keys: ReadonlyArray<string>; index: number; wrote: boolean }

/** Like JSON.stringify(value) (no replacer, no indent); undefined when over a limit or not JSON. */
export const safeStringify = (value: unknown, limits: SafeStringifyLimits): string | undefined => {
  try {
    return walk(value, limits)
  } catch {
    return undefined // a getter or toJSON that throws
  }
}

const walk = (value: unknown, limits: SafeStringifyLimits): string | undefined => {
  const parts: Array<string> = []
  let length = 0
  const emit = (s: string): boolean => {
    length += s.length
    parts.push(s)
    return length <= limits.maxLength
  }
  const stack: Array<Frame> = []

  /** Writes a scalar, or opens a container; false when a limit is hit. */
  const open = (v: unknown): boolean => {
    if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
      v = (v as { toJSON: () => unknown }).toJSON()
    }
    if (v === null) return emit("null")
    switch (typeof v) {
      case "string":
        return v.length > limits.maxLength ? false : emit(JSON.stringify(v))
      case "number":
        return emit(Number.isFinite(v) ? String(v) : "null")
      case "boolean":
        return emit(v ? "true" : "false")
      case "bigint":
        return false // JSON.stringify throws on it
      case "object":
        if (stack.length >= limits.maxDepth) return false
        if (Array.isArray(v)) {
          stack.push({ kind: "array", items: v, index: 0 })
          return emit("[")
        }
        stack.push({ kind: "object", record: v as Record<string, unknown>, keys: Object.keys(v), index: 0, wrote: false })
        return emit("{")
      default:
        return emit("null") // undefined, functions, symbols: as JSON.stringify writes them in an array
    }
  }

  if (!isWritable(value)) return undefined
  if (!open(value)) return undefined
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!
    if (top.kind === "array") {
      if (top.index >= top.items.length) {
        stack.pop()
        if (!emit("]")) return undefined
        continue
      }
      if (top.index > 0 && !emit(",")) return undefined
      if (!open(top.items[top.index++])) return undefined
    } else {
      if (top.index >= top.keys.length) {
        stack.pop()
        if (!emit("}")) return undefined
        continue
      }
      const key = top.keys[top.index++]!
      const v = top.record[key]
      // JSON.stringify leaves these keys out of objects
      if (!isWritable(v)) continue
      if (!emit(`${top.wrote ? "," : ""}${JSON.stringify(key)}:`)) return undefined
      top.wrote = true
      if (!open(v)) return undefined
    }
  }
  return parts.join("")
}

const isWritable = (v: unknown): boolean => v !== undefined && typeof v !== "function" && typeof v !== "symbol"
