/**
 * The bench's input: `Signed Up` events shaped like the ones Signal puts on its delivery topic
 * (Signal's event contract, README), each with its own email, so every event is one `managecontact` call and no
 * two wait on each other's per-contact order. Deterministic: the same N gives the same file.
 */
import { once } from "node:events"
import * as Fs from "node:fs"

const METHODS = ["email", "google", "apple"] as const

/** Consent cycles through granted, withdrawn and absent, so all three actions are sent. */
const consentFor = (i: number): Readonly<Record<string, boolean>> | undefined =>
  i % 3 === 0 ? { marketing: true, analytics: true } : i % 3 === 1 ? { marketing: false, analytics: true } : undefined

const hex = (n: number, width: number): string => n.toString(16).padStart(width, "0")

/** One NDJSON line. `prefix` keeps warm-up contacts apart from the measured ones. */
export const eventLine = (i: number, prefix: string, contacts?: number): string => {
  const consent = consentFor(i)
  const seconds = i % 86_400
  return JSON.stringify({
    type: "track",
    event: "Signed Up",
    messageId: `${hex(i, 8)}-8a51-4c4b-9a0e-${hex(i * 7919 % 0xffffffffffff, 12)}`,
    timestamp: new Date(Date.UTC(2026, 10, 26) + seconds * 1000).toISOString(),
    anonymousId: `0b7e6a53-3f5e-4f0a-9a39-${hex(i, 12)}`,
    properties: { method: METHODS[i % METHODS.length] },
    context: {
      traits: { email: `${prefix}.${contacts === undefined ? i : i % contacts}@bench.example.com`, first_name: "Jane", last_name: `Doe ${i}` },
      ...(consent === undefined ? {} : { consent }),
      page: { path: "/signup", url: "https://shop.example.com/signup", title: "Create your account" },
      ip: "203.0.113.7",
      userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
      locale: "en-GB",
      timezone: "Europe/London"
    }
  })
}

/** Writes `count` events to `path`, streamed with back-pressure (the 1M file is ~0.5 GB). */
/** `contacts`: events cycle through this many contacts (event i is contact i mod contacts), instead of one each. */
export const writeEvents = async (path: string, count: number, prefix: string, contacts?: number): Promise<void> => {
  const out = Fs.createWriteStream(path)
  let chunk = ""
  for (let i = 0; i < count; i++) {
    chunk += eventLine(i, prefix, contacts) + "\n"
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, "drain")
      chunk = ""
    }
  }
  out.end(chunk)
  await once(out, "finish")
}
