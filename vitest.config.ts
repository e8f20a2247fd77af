import { defineConfig } from "vitest/config"

// Two projects so that the Kafka broker starts only when a test that needs it runs: vitest runs a
// project's global setup only when one of its files is selected. Both build dist first (the CLI
// and worker tests spawn `node dist/bin.js`); the build runs once per vitest run.
const KAFKA_TESTS = ["test/Worker*.test.ts", "test/KafkaTools.test.ts"]

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // One file at a time: the worker tests measure rates and ordering across processes, and on a
    // 2-core machine other files running beside them made those measurements flaky.
    fileParallelism: false,
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["test/**/*.test.ts"], exclude: KAFKA_TESTS, globalSetup: ["test/globalSetup.ts"] }
      },
      {
        extends: true,
        // kafkaSetup starts a real broker (scripts/kafka) unless KAFKA_BROKERS names one.
        test: { name: "kafka", include: KAFKA_TESTS, globalSetup: ["test/globalSetup.ts", "test/support/kafkaSetup.ts"] }
      }
    ]
  }
})
