import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // globalSetup.ts builds dist (the CLI tests spawn `node dist/bin.js`); kafkaSetup starts a real
    // Kafka broker for the worker tests (scripts/kafka), unless KAFKA_BROKERS names one.
    globalSetup: ["test/globalSetup.ts", "test/support/kafkaSetup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
