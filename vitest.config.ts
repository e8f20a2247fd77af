import { defineConfig } from "vitest/config"

// Four projects in two lanes that run side by side (vitest runs each pool at the same time as the
// others):
//
// - the thread pool, one file at a time: "serial", the broker tests that measure rates, ordering,
//   hand-over or shutdown times across processes, then "readme". Each is `singleThread`: vitest runs
//   such projects one after the other, each one's files in turn. A new broker test lands in "serial"
//   unless it is named in BESIDE.
// - the fork pool: "unit" and "kafka", everything else. On a 2-core machine that pool has one fork
//   (vitest's default is cores - 1), so they too run in turn. Each file keeps a fresh fork: with
//   isolate: false, @effect/vitest's TestClock broke in files after a `layer(…, { excludeTestServices })`
//   file, and a codec installed by one file changed another's batches.
//
// The broker starts only when a broker test runs: vitest runs a project's global setup only when
// one of its files is selected. Every project builds dist first (the CLI and worker tests spawn
// `node dist/bin.js`); the build runs once per vitest run.
const BROKER = ["test/Worker*.test.ts", "test/KafkaTools.test.ts"]
/**
 * Broker tests that check what happens, not how fast: they run beside the serial lane. Only these
 * few: the unit files alone fill the fork lane about as long as the broker tests fill theirs.
 */
const BESIDE = [
  "test/KafkaTools.test.ts",
  "test/WorkerCodecs.test.ts",
  "test/WorkerJobs.test.ts",
  "test/WorkerPoison.test.ts",
  "test/WorkerReplay.test.ts",
  "test/WorkerStart.test.ts"
]
/** Like WorkerReadme (in "serial"), it runs the README's commands on the README's port 3030: never beside it. */
const README = ["test/Readme.test.ts"]

export default defineConfig({
  test: {
    // Two lanes share the cores: a test that spawns the CLI a few times takes longer than alone.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: [...BROKER, ...README],
          pool: "forks",
          globalSetup: ["test/globalSetup.ts"]
        }
      },
      {
        extends: true,
        // kafkaSetup starts a real broker (scripts/kafka) unless KAFKA_BROKERS names one.
        test: {
          name: "kafka",
          include: BESIDE,
          pool: "forks",
          globalSetup: ["test/globalSetup.ts", "test/support/kafkaSetup.ts"]
        }
      },
      {
        extends: true,
        test: {
          name: "serial",
          include: BROKER,
          exclude: BESIDE,
          pool: "threads",
          poolOptions: { threads: { singleThread: true } },
          globalSetup: ["test/globalSetup.ts", "test/support/kafkaSetup.ts"]
        }
      },
      {
        extends: true,
        test: {
          name: "readme",
          include: README,
          pool: "threads",
          poolOptions: { threads: { singleThread: true } },
          globalSetup: ["test/globalSetup.ts"]
        }
      }
    ]
  }
})
