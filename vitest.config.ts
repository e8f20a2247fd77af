import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // A real Kafka broker for the worker tests (scripts/kafka), unless KAFKA_BROKERS names one.
    globalSetup: ["test/support/kafkaSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
