/** Signal's seed example (README): the event as Signal delivers it, and the exact request it must produce. */
export const SEED_EVENT = {
  type: "track",
  event: "Signed Up",
  messageId: "6f1d3c1e-8a51-4c4b-9a0e-2f4f1c7b9d10",
  timestamp: "2026-11-26T10:15:00.000Z",
  anonymousId: "0b7e6a53-3f5e-4f0a-9a39-7d0c2f7f2a11",
  properties: { method: "email" },
  context: {
    traits: { email: "jane.doe@example.com", first_name: "Jane", last_name: "Doe" },
    consent: { marketing: true }
  }
}

export const SEED_BODY = {
  Email: "jane.doe@example.com",
  Name: "Jane Doe",
  Action: "addforce",
  Properties: { first_name: "Jane", last_name: "Doe", signup_method: "email" }
} as const

/** One event of Kim, who consents to marketing: the dead-letter and replay stories use her. */
export const kim = (event: string, extra: Record<string, unknown>) =>
  JSON.stringify({
    type: "track",
    event,
    messageId: `kim-${event}`,
    context: { traits: { email: "kim@example.com", first_name: "Kim" }, consent: { marketing: true } },
    ...extra
  })
