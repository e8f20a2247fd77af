/** Test helpers around the real broker and the real worker process. */
import {
  Admin,
  ConfigResourceTypes,
  Consumer,
  IncrementalAlterConfigOperationTypes,
  Producer,
  stringDeserializers,
  stringSerializers
} from "@platformatic/kafka"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

export const brokers = () => (process.env["KAFKA_BROKERS"] ?? "127.0.0.1:19092").split(",")
const bin = fileURLToPath(new URL("../../dist/bin.js", import.meta.url))

export const createTopic = async (topic: string, partitions: number, at = brokers()) => {
  const admin = new Admin({ clientId: "test-admin", bootstrapBrokers: at })
  try {
    await admin.createTopics({ topics: [topic], partitions, replicas: 1 })
  } finally {
    await admin.close()
  }
}

export const produce = async (
  topic: string,
  records: ReadonlyArray<{ readonly key: string; readonly value: string }>,
  at = brokers()
) => {
  const producer = new Producer({
    clientId: "test-producer",
    bootstrapBrokers: at,
    serializers: stringSerializers,
    autocreateTopics: true,
    // A batch retried after a lost reply would otherwise be in the topic twice.
    idempotent: true
  })
  try {
    for (let i = 0; i < records.length; i += 500) {
      await producer.send({ messages: records.slice(i, i + 500).map((r) => ({ topic, key: r.key, value: r.value })) })
    }
  } finally {
    await producer.close()
  }
}

/** Every record of a topic, read from the start by a throwaway group until `count` arrive or time runs out. */
export const readTopic = async (topic: string, count: number, timeoutMs = 15_000, at = brokers()) => {
  const consumer = new Consumer({
    clientId: "test-reader",
    groupId: `reader-${topic}-${Date.now()}-${Math.random()}`,
    bootstrapBrokers: at,
    deserializers: stringDeserializers,
    autocommit: false
  })
  const out: Array<{ key: string | undefined; value: string; headers: Map<string, string>; partition: number; offset: bigint }> = []
  try {
    const stream = await consumer.consume({ topics: [topic], mode: "earliest", autocommit: false, maxWaitTime: 200 })
    const deadline = setTimeout(() => void stream.close(), timeoutMs)
    for await (const m of stream) {
      out.push({ key: m.key, value: m.value, headers: m.headers, partition: m.partition, offset: m.offset })
      if (out.length >= count) break
    }
    clearTimeout(deadline)
    await stream.close()
  } finally {
    await consumer.close(true)
  }
  return out
}

/** Committed offset per partition for the group (-1 when none). */
export const committedOffsets = async (groupId: string, topic: string, partitions: number, at = brokers()) => {
  const consumer = new Consumer({ clientId: "test-offsets", groupId, bootstrapBrokers: at, autocommit: false })
  try {
    const offsets = await consumer.listCommittedOffsets({
      topics: [{ topic, partitions: Array.from({ length: partitions }, (_, i) => i) }]
    })
    return (offsets.get(topic) ?? []).map(Number)
  } finally {
    await consumer.close(true)
  }
}

/** The end (next) offset per partition. */
export const endOffsets = async (topic: string, at = brokers()) => {
  const consumer = new Consumer({ clientId: "test-end", groupId: `end-${Date.now()}`, bootstrapBrokers: at })
  try {
    const offsets = await consumer.listOffsets({ topics: [topic] })
    return (offsets.get(topic) ?? []).map(Number)
  } finally {
    await consumer.close(true)
  }
}

export interface Worker {
  readonly proc: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<number | null>
}

/** `signal-mailjet serve` as a real process, with exactly the environment given. */
export const startWorker = (env: Record<string, string>): Worker => {
  const proc = spawn(bin, ["serve", "--log-level", process.env["WORKER_LOG_LEVEL"] ?? "info"], {
    env: { PATH: process.env["PATH"] ?? "", KAFKA_BROKERS: brokers().join(","), HTTP_HOST: "127.0.0.1", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let out = ""
  let err = ""
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()))
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)))
  return { proc, stdout: () => out, stderr: () => err, exited }
}

export const waitFor = async <A>(
  what: string,
  check: () => Promise<A | undefined> | A | undefined,
  timeoutMs = 30_000
): Promise<A> => {
  const started = Date.now()
  while (Date.now() - started < timeoutMs) {
    const v = await check()
    if (v !== undefined) return v
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

export const freePort = async () => {
  const net = await import("node:net")
  return new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

/** Sets one of a topic's configs (max.message.bytes, say), as an operator would. */
export const setTopicConfig = async (topic: string, name: string, value: string) => {
  const admin = new Admin({ clientId: "test-admin", bootstrapBrokers: brokers() })
  try {
    await admin.incrementalAlterConfigs({
      resources: [{
        resourceType: ConfigResourceTypes.TOPIC,
        resourceName: topic,
        configs: [{ name, configOperation: IncrementalAlterConfigOperationTypes.SET, value }]
      }]
    })
  } finally {
    await admin.close()
  }
}

/** Records with values as bytes, as any producer may write them (not UTF-8, say), in order. */
export const produceBytes = async (
  topic: string,
  records: ReadonlyArray<{ readonly key: string; readonly value: Buffer }>
) => {
  const producer = new Producer({ clientId: "test-producer", bootstrapBrokers: brokers(), autocreateTopics: true, idempotent: true })
  try {
    for (const r of records) await producer.send({ messages: [{ topic, key: Buffer.from(r.key), value: r.value }] })
  } finally {
    await producer.close()
  }
}

/**
 * A broker of the test's own (scripts/kafka on free ports and a data dir of its own), to stop and
 * start again: never the shared one. Jars come from KAFKA_JARS (a scripts/kafka lib dir) when set.
 */
export const ownBroker = async () => {
  const Fs = await import("node:fs")
  const Os = await import("node:os")
  const Path = await import("node:path")
  const { execFile } = await import("node:child_process")
  const home = Fs.mkdtempSync(Path.join(Os.tmpdir(), "signal-mailjet-broker-"))
  // The jars scripts/kafka fetched for the shared broker, else it fetches them again (Maven).
  const jars = [process.env["KAFKA_JARS"], process.env["KAFKA_HOME_DIR"] && Path.join(process.env["KAFKA_HOME_DIR"], "lib"), fileURLToPath(new URL("../../.kafka/lib", import.meta.url))]
    .find((d) => d !== undefined && d !== "" && Fs.existsSync(Path.join(d, ".stamp")))
  if (jars !== undefined) Fs.cpSync(jars, Path.join(home, "lib"), { recursive: true })
  const port = await freePort()
  const env = {
    ...process.env,
    KAFKA_HOME_DIR: home,
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(await freePort()),
    KAFKA_HEAP_OPTS: "-Xms64m -Xmx256m"
  }
  const script = fileURLToPath(new URL("../../scripts/kafka", import.meta.url))
  const run = (...args: Array<string>) =>
    new Promise<void>((resolve, reject) =>
      execFile(script, args, { env, timeout: 240_000 }, (e, _out, err) => (e ? reject(new Error(`${e.message}: ${err}`)) : resolve()))
    )
  await run("start")
  return {
    brokers: [`127.0.0.1:${port}`],
    /** Stops it, keeping its data. */
    stop: () => run("stop", "--keep"),
    /** Starts it again on its data. */
    start: () => run("start", "--keep"),
    /** Stops it and deletes everything. */
    remove: async () => {
      await run("stop")
      Fs.rmSync(home, { recursive: true, force: true })
    }
  }
}

/** A gauge or counter from the worker's /metrics, the first series of that name (any labels). */
export const workerMetric = async (port: string, name: string) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? ([\\d.e+-]+)`, "m"))
  return m === null ? undefined : Number(m[1])
}

/** Waits for the worker's /ready; when it never comes, the error ends with the worker's last log lines. */
export const workerReady = (port: string, w: Worker, timeoutMs = 60_000) =>
  waitFor(`ready on ${port}`, async () => ((await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.status === 200 ? true : undefined), timeoutMs)
    .catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}; its log ends:\n${w.stderr().split("\n").slice(-20).join("\n")}`)
    })

/** SIGTERM, then its exit. */
export const stopWorker = async (w: Worker) => {
  w.proc.kill("SIGTERM")
  return w.exited
}
