/**
 * Vitest global setup: a real Kafka broker for the worker tests. Uses KAFKA_BROKERS when set (CI
 * starts the broker in .ci/run); otherwise starts scripts/kafka and stops it afterwards.
 */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const script = fileURLToPath(new URL("../../scripts/kafka", import.meta.url))
let started = false

export const setup = () => {
  if (process.env["KAFKA_BROKERS"] !== undefined) return
  try {
    execFileSync(script, ["status"], { stdio: "ignore" })
  } catch {
    started = true // not running: ours to start and to stop
  }
  execFileSync(script, ["start"], { stdio: "inherit", timeout: 180_000 })
  process.env["KAFKA_BROKERS"] = `127.0.0.1:${process.env["KAFKA_PORT"] ?? "19092"}`
}

export const teardown = () => {
  if (started) execFileSync(script, ["stop"], { stdio: "inherit", timeout: 60_000 })
}
