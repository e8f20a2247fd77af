import { defineConfig } from "vitest/config"

// Three projects in two lanes that run side by side.
//
// - "serial": the broker tests that measure rates, ordering or hand-over times across processes, and
//   the two README tests that bind the README's fixed ports (3030, 8080). They run one file at a
//   time, in a thread pool of their own (`singleThread`): vitest runs each pool at the same time as
//   the others, and a project's single thread or fork runs its files in turn.
// - "unit" and "kafka": everything else, in the fork pool, beside the serial lane. On a 2-core
//   machine that pool has one fork (vitest's default is cores - 1), so they too run in turn.
//
// The broker starts only when a broker test runs: vitest runs a project's global setup only when
// one of its files is selected. Every project builds dist first (the CLI and worker tests spawn
// `node dist/bin.js`); the build runs once per vitest run.
const SERIAL = [
  "test/WorkerScale.test.ts",
  "test/WorkerBulk.test.ts",
  "test/WorkerOutage.test.ts",
  "test/Worker.test.ts",
  "test/WorkerFair.test.ts",
  "test/WorkerReady.test.ts",
  "test/WorkerConnections.test.ts",
  "test/WorkerReadme.test.ts",
  "test/Readme.test.ts"
]
const BROKER = ["test/Worker*.test.ts", "test/KafkaTools.test.ts"]

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: [...BROKER, ...SERIAL],
          pool: "forks",
          globalSetup: ["test/globalSetup.ts"]
        }
      },
      {
        extends: true,
        // kafkaSetup starts a real broker (scripts/kafka) unless KAFKA_BROKERS names one.
        test: {
          name: "kafka",
          include: BROKER,
          exclude: SERIAL,
          pool: "forks",
          globalSetup: ["test/globalSetup.ts", "test/support/kafkaSetup.ts"]
        }
      },
      {
        extends: true,
        test: {
          name: "serial",
          include: SERIAL,
          pool: "threads",
          poolOptions: { threads: { singleThread: true } },
          globalSetup: ["test/globalSetup.ts", "test/support/kafkaSetup.ts"]
        }
      }
    ]
  }
})
