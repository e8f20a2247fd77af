/**
 * Email masking for every log line and every message built from input: the bottom layer, so that
 * the Mailjet client, delivery and the Kafka side all mask the same way without importing each other.
 */

/** `jane.doe@example.com` → `j***@example.com`: enough to tell contacts apart in a log, not to mail them. */
export const maskEmail = (email: string): string => {
  const at = email.lastIndexOf("@")
  if (at < 1) return "***"
  return `${email[0]}***${email.slice(at)}`
}

// Bounded parts: an unbounded `+` before the `@` would make a long text without one quadratic.
const EMAIL_LIKE = /[^\s@"<>(),;:\\[\]]{1,64}@[^\s@"<>(),;:\\[\]]{1,255}/gu

/**
 * Masks whatever looks like an email (`something@somewhere`) in free text: messages from Mailjet
 * and reasons built from input quote addresses (`Invalid email address "jane@x"`).
 */
export const maskEmails = (text: string): string => text.includes("@") ? text.replace(EMAIL_LIKE, maskEmail) : text
