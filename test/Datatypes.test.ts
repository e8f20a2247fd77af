import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import type { FastCheck } from "effect"
import { coerceProperties, coerceValue } from "../src/Preset/Datatypes.js"
import { Datatype, DefaultPreset } from "../src/Preset/Preset.js"

type FC = typeof FastCheck

const numberFrom = (arb: (fc: FC) => FastCheck.Arbitrary<number>) =>
  Schema.Number.annotations({ arbitrary: () => arb })

/** Safe integers over the whole range (Schema.Int alone stays small). */
const SafeInt = numberFrom((fc) => fc.maxSafeInteger())
/** Finite doubles of every magnitude; -0 left out, since "-0" is not a number anyone sends. */
const FiniteDouble = numberFrom((fc) => fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)))
/** Whitespace a form field may carry around a number. */
const Padding = Schema.Literal("", " ", "  ", "\t", "\n")
const Scalar = Schema.Union(Schema.String, Schema.Number, Schema.Boolean)
/** What no Mailjet property can hold. */
const NonScalar = Schema.Union(
  Schema.Null,
  Schema.Undefined,
  Schema.Array(Schema.Unknown),
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)
/** Dates Mailjet can store: RFC 3339 has four-digit years. */
const StorableDate = Schema.DateFromSelf.annotations({
  arbitrary: () => (fc) =>
    fc.date({ min: new Date("0000-01-01T00:00:00.000Z"), max: new Date("9999-12-31T23:59:59.999Z"), noInvalidDate: true })
})

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

const right = <A>(e: Either.Either<A, string>): A => {
  if (Either.isLeft(e)) throw new Error(`expected a value, got: ${e.left}`)
  return e.right
}
/** A datetime comes back as text. */
const text = (v: string | number | boolean): string => {
  if (typeof v !== "string") throw new Error(`expected text, got ${typeof v}`)
  return v
}
const left = <A>(e: Either.Either<A, string>): string => {
  if (Either.isRight(e)) throw new Error(`expected a rejection, got ${JSON.stringify(e.right)}`)
  return e.left
}

describe("coerceValue laws", () => {
  it.prop("str accepts any scalar: strings as they are, numbers and booleans as text", { v: Scalar }, ({ v }) => {
    expect(right(coerceValue("str", v))).toBe(typeof v === "string" ? v : String(v))
  })

  it.prop("int: safe integers and their decimal text round-trip", { n: SafeInt, pre: Padding, post: Padding }, ({ n, post, pre }) => {
    expect(right(coerceValue("int", n))).toBe(n)
    expect(right(coerceValue("int", `${pre}${n}${post}`))).toBe(n)
    if (n >= 0) expect(right(coerceValue("int", `+${n}`))).toBe(n)
  })

  it.prop("int: numbers with a fraction and their text are rejected", { n: SafeInt, frac: Schema.Literal(0.5, 0.25, 0.1) }, ({ frac, n }) => {
    const x = (n % 1_000_000) + frac
    expect(left(coerceValue("int", x))).toContain("expects int")
    expect(left(coerceValue("int", String(x)))).toContain("expects int")
  })

  it.prop("float: finite numbers and their text round-trip", { d: FiniteDouble, pre: Padding, post: Padding }, ({ d, post, pre }) => {
    expect(right(coerceValue("float", d))).toBe(d)
    expect(right(coerceValue("float", `${pre}${String(d)}${post}`))).toBe(d)
    expect(right(coerceValue("float", d.toExponential()))).toBe(d)
  })

  it.prop(
    "float: decimal text with any number of digits is read as that decimal",
    { d: numberFrom((fc) => fc.double({ min: -1e12, max: 1e12, noNaN: true })), digits: Schema.Literal(0, 1, 2, 3, 6) },
    ({ d, digits }) => {
      const text = d.toFixed(digits)
      expect(right(coerceValue("float", text))).toBe(Number(text))
    }
  )

  /** Numeric text of every magnitude, overflowing and underflowing ones included. */
  const NumericText = Schema.String.annotations({
    arbitrary: () => (fc) =>
      fc.tuple(fc.integer({ min: -999, max: 999 }), fc.nat(99), fc.integer({ min: -400, max: 400 }))
        .map(([i, f, e]) => `${i}.${f}e${e}`)
  })

  // NaN and the infinities: JSON cannot carry them, so Mailjet would get null.
  const NonFinite = numberFrom((fc) => fc.constantFrom(NaN, Infinity, -Infinity))

  it.prop("float: whatever it gives is a finite number", { v: Schema.Union(Scalar, FiniteDouble, NonFinite, NumericText) }, ({ v }) => {
    const r = coerceValue("float", v)
    // Either a finite number, or a rejection that says what was expected.
    expect(Either.match(r, { onLeft: (problem) => problem.startsWith("expects float"), onRight: Number.isFinite })).toBe(true)
  })

  it.prop("int: whatever it gives is a safe integer", { v: Schema.Union(Scalar, SafeInt) }, ({ v }) => {
    const r = coerceValue("int", v)
    expect(Either.match(r, { onLeft: (problem) => problem.startsWith("expects int"), onRight: Number.isSafeInteger }))
      .toBe(true)
  })

  it.prop(
    "bool: booleans, 1/0 and true/false in any case",
    {
      b: Schema.Boolean,
      upper: Schema.Array(Schema.Boolean).pipe(Schema.itemsCount(5)),
      pad: Padding
    },
    ({ b, pad, upper }) => {
      expect(right(coerceValue("bool", b))).toBe(b)
      expect(right(coerceValue("bool", b ? 1 : 0))).toBe(b)
      const text = [...String(b)].map((c, i) => upper[i] === true ? c.toUpperCase() : c).join("")
      expect(right(coerceValue("bool", `${pad}${text}${pad}`))).toBe(b)
    }
  )

  it.prop("bool: any other number or text is rejected", { v: Schema.Union(Schema.Number, Schema.String) }, ({ v }) => {
    if (v === 0 || v === 1 || (typeof v === "string" && /^(true|false)$/i.test(v.trim()))) return
    expect(left(coerceValue("bool", v))).toContain("expects bool")
  })

  it.prop("datetime: an ISO 8601 instant comes back as RFC 3339 at the same instant", { d: StorableDate }, ({ d }) => {
    const out = text(right(coerceValue("datetime", d.toISOString())))
    expect(out).toMatch(RFC3339)
    expect(new Date(out).getTime()).toBe(d.getTime())
  })

  it.prop(
    "datetime: Unix seconds, as a number or as text, are that instant",
    { s: numberFrom((fc) => fc.integer({ min: -62_167_219_200, max: 253_402_300_799 })) },
    ({ s }) => {
      const out = text(right(coerceValue("datetime", s)))
      expect(out).toMatch(RFC3339)
      expect(new Date(out).getTime()).toBe(s * 1000)
      expect(right(coerceValue("datetime", String(s)))).toBe(out)
    }
  )

  it.prop(
    "datetime: whatever it gives is RFC 3339",
    {
      v: Schema.Union(
        Scalar,
        numberFrom((fc) => fc.double({ noNaN: true })),
        SafeInt,
        // Unix seconds around and beyond year 9999 and before year 0
        numberFrom((fc) => fc.integer({ min: -1e13, max: 1e13 })),
        Schema.String.annotations({ arbitrary: () => (fc) => fc.integer({ min: -1e13, max: 1e13 }).map(String) })
      )
    },
    ({ v }) => {
      const r = coerceValue("datetime", v)
      expect(Either.match(r, { onLeft: (problem) => problem.startsWith("expects datetime"), onRight: (d) => RFC3339.test(String(d)) }))
        .toBe(true)
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "non-scalars are rejected for every datatype, with a reason naming the datatype and what came",
    { datatype: Datatype, v: NonScalar },
    ({ datatype, v }) => {
      const reason = left(coerceValue(datatype, v))
      expect(reason).toContain(`expects ${datatype}`)
      expect(reason).toContain(
        v === null ? "null" : v === undefined ? "no value" : Array.isArray(v) ? "a list" : "an object"
      )
    }
  )
})

describe("coerceValue examples", () => {
  it("numbers from forms", () => {
    expect(right(coerceValue("float", "49.90"))).toBe(49.9)
    expect(right(coerceValue("float", ".5"))).toBe(0.5)
    expect(right(coerceValue("float", "-1e3"))).toBe(-1000)
    expect(right(coerceValue("int", "42"))).toBe(42)
    expect(right(coerceValue("int", " -7 "))).toBe(-7)
    expect(right(coerceValue("int", 0))).toBe(0)
    for (const bad of ["", " ", "abc", "1,5", "0x10", "Infinity", "NaN", "1e400", "-1e999"]) {
      expect(left(coerceValue("float", bad))).toContain("expects float")
    }
    for (const bad of ["", "4.5", "1e3", "9007199254740993", "seven"]) {
      expect(left(coerceValue("int", bad))).toContain("expects int")
    }
    expect(left(coerceValue("int", 4.5))).toBe("expects int, got a number")
    expect(left(coerceValue("float", Number.POSITIVE_INFINITY))).toContain("expects float")
  })

  it("booleans", () => {
    expect(right(coerceValue("bool", "TRUE"))).toBe(true)
    expect(right(coerceValue("bool", " false "))).toBe(false)
    expect(left(coerceValue("bool", "yes"))).toBe("expects bool, got a string")
    expect(left(coerceValue("bool", 2))).toBe("expects bool, got a number")
  })

  it("datetimes", () => {
    expect(right(coerceValue("datetime", "2026-11-26T10:15:00.000Z"))).toBe("2026-11-26T10:15:00Z")
    expect(right(coerceValue("datetime", "2026-11-26T11:15:00.250+01:00"))).toBe("2026-11-26T10:15:00.250Z")
    expect(right(coerceValue("datetime", "2026-11-26"))).toBe("2026-11-26T00:00:00Z")
    expect(right(coerceValue("datetime", 1700000000))).toBe("2023-11-14T22:13:20Z")
    expect(right(coerceValue("datetime", "1700000000"))).toBe("2023-11-14T22:13:20Z")
    expect(left(coerceValue("datetime", "yesterday"))).toBe("expects datetime, got a string")
    expect(left(coerceValue("datetime", true))).toBe("expects datetime, got a boolean")
    expect(left(coerceValue("datetime", ""))).toBe("expects datetime, got a string")
    // beyond what RFC 3339 can write (four-digit years)
    expect(left(coerceValue("datetime", 1e12))).toBe("expects datetime, got a number")
    expect(left(coerceValue("datetime", "+010000-01-01T00:00:00Z"))).toContain("expects datetime")
  })

  it("str keeps text as it is", () => {
    expect(right(coerceValue("str", "  Jane "))).toBe("  Jane ")
    expect(right(coerceValue("str", 0))).toBe("0")
    expect(right(coerceValue("str", false))).toBe("false")
    expect(left(coerceValue("str", { a: 1 }))).toBe("expects str, got an object")
    expect(left(coerceValue("str", ["a"]))).toBe("expects str, got a list")
    expect(left(coerceValue("str", null))).toBe("expects str, got null")
  })
})

describe("coerceProperties", () => {
  const Properties = Schema.Record({ key: Schema.String, value: Schema.Union(Scalar, NonScalar) })
  const Datatypes = Schema.Record({ key: Schema.String, value: Datatype })
  /** Mostly the Default preset's property names, so most properties have a datatype. */
  const Named = Schema.Record({
    key: Schema.Literal("first_name", "last_name", "signup_method", "last_order_value", "last_order_currency", "other"),
    value: Schema.Union(Scalar, NonScalar)
  })

  it.prop(
    "every property fitted to its datatype, or the first misfit named; never an undefined value",
    { properties: Schema.Union(Properties, Named), declared: Datatypes },
    ({ declared, properties: generated }) => {
      const properties: Readonly<Record<string, unknown>> = generated
      const datatypes = new Map([...DefaultPreset.datatypes, ...Object.entries(declared)])
      const r = coerceProperties(properties, datatypes)
      if (Either.isRight(r)) {
        expect(Object.keys(r.right).sort()).toEqual(Object.keys(properties).sort())
        for (const [name, v] of Object.entries(r.right)) {
          expect(["string", "number", "boolean"]).toContain(typeof v)
          const datatype = datatypes.get(name)
          expect(v).toStrictEqual(datatype === undefined ? properties[name] : right(coerceValue(datatype, properties[name])))
        }
      } else {
        const named = /^property "(.*)" /s.exec(r.left)
        expect(named).not.toBeNull()
        const name = named![1]!
        expect(Object.keys(properties)).toContain(name)
        const datatype = datatypes.get(name)
        if (datatype !== undefined) expect(Either.isLeft(coerceValue(datatype, properties[name]))).toBe(true)
      }
    },
    { fastCheck: { numRuns: 300 } }
  )

  it.prop(
    "properties that all fit come back whole",
    { properties: Schema.Record({ key: Schema.String, value: Schema.String }) },
    ({ properties }) => {
      const datatypes = new Map(Object.keys(properties).map((k) => [k, "str" as const]))
      expect(right(coerceProperties(properties, datatypes))).toStrictEqual({ ...properties })
    }
  )

  it("examples", () => {
    expect(right(coerceProperties({ last_order_value: "49.90", first_name: 0, unknown: true }, DefaultPreset.datatypes)))
      .toStrictEqual({ last_order_value: 49.9, first_name: "0", unknown: true })
    expect(left(coerceProperties({ last_order_value: "free" }, DefaultPreset.datatypes))).toBe(
      "property \"last_order_value\" expects float, got a string"
    )
    expect(left(coerceProperties({ tags: ["a"] }, DefaultPreset.datatypes))).toContain("property \"tags\" has a list")
    expect(left(coerceProperties({ first_name: undefined }, DefaultPreset.datatypes))).toContain("property \"first_name\"")
    expect(right(coerceProperties({}, DefaultPreset.datatypes))).toStrictEqual({})
  })

  it("a property named __proto__ is kept as data", () => {
    const properties = JSON.parse("{\"__proto__\": \"x\", \"a\": 1}") as Record<string, unknown>
    const out = right(coerceProperties(properties, new Map([["__proto__", "str"]])))
    expect(Object.keys(out)).toEqual(["__proto__", "a"])
    expect(JSON.stringify(out)).toBe("{\"__proto__\":\"x\",\"a\":1}")
  })
})

describe("datetime without an offset", () => {
  it("is read as UTC whatever the server's time zone", () => {
    expect(coerceValue("datetime", "2026-11-26T10:15:00")).toEqual(Either.right("2026-11-26T10:15:00Z"))
    expect(coerceValue("datetime", "2026-11-26T10:15:00.250")).toEqual(Either.right("2026-11-26T10:15:00.250Z"))
    expect(coerceValue("datetime", "2026-11-26T10:15:00+02:00")).toEqual(Either.right("2026-11-26T08:15:00Z"))
  })
})
