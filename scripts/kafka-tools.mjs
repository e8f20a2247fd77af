// scripts/kafka-tools.mjs: the console tools the assembled broker lacks, on @platformatic/kafka
// (the client `serve` itself uses). Called by scripts/kafka:
//
//   topic NAME [PARTITIONS]   create a topic (3 partitions by default); an existing one is kept,
//                             and exit 1 when it has another number of partitions than asked
//   produce TOPIC FILE        one record per non-blank NDJSON line ("-" reads stdin), keyed by the
//                             event's email (as delivery normalises it), else its anonymousId, else
//                             no key; so one contact's events stay in one partition, in file order
//   consume TOPIC             print every value on the topic now, one per line, then exit
//
// Brokers: KAFKA_BROKERS, else 127.0.0.1:$KAFKA_PORT (the broker scripts/kafka starts).
import { Admin, Consumer, Producer, stringDeserializers, stringSerializers } from "@platformatic/kafka"
import { createReadStream } from "node:fs"
import { createInterface } from "node:readline"

const bootstrapBrokers = (process.env.KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? "19092"}`)
  .split(",").map((b) => b.trim()).filter((b) => b !== "")

/** Same sources and order as src/Mapping.ts rawEmail, trimmed and lower-cased like normaliseEmail. */
export const keyOf = (line) => {
  let event
  try {
    event = JSON.parse(line)
  } catch {
    return undefined // the worker dead-letters it; no key is as good as any
  }
  if (event === null || typeof event !== "object") return undefined
  const email = [event.traits?.email, event.context?.traits?.email, event.properties?.email]
    .find((v) => typeof v === "string" && v.trim() !== "")
  if (email !== undefined) return email.trim().toLowerCase()
  return typeof event.anonymousId === "string" && event.anonymousId !== "" ? event.anonymousId : undefined
}

const topic = async (name, partitions) => {
  const count = Number(partitions ?? "3")
  if (!Number.isInteger(count) || count < 1) throw new Error(`PARTITIONS must be a positive integer (got ${partitions})`)
  const admin = new Admin({ clientId: "kafka-tools", bootstrapBrokers })
  try {
    if ((await admin.listTopics()).includes(name)) {
      if (partitions === undefined) return console.log(`topic ${name} exists`)
      // Only after listTopics: the local broker creates a topic that metadata merely names.
      const has = (await admin.metadata({ topics: [name] })).topics.get(name)?.partitionsCount
      if (has === count) return console.log(`topic ${name} exists with ${count} partitions`)
      // Not changed here: adding partitions moves keys, so a contact's events could be delivered out of order.
      console.error(
        `kafka topic: ${name} exists with ${has} partitions, not ${count}: it is kept as it is. Partitions can be added ` +
          `(while nothing is produced to it: adding moves keys to other partitions) but never removed; for ${count}, ` +
          `delete the topic (scripts/kafka stop wipes the local broker) or use another name`
      )
      process.exitCode = 1
      return
    }
    await admin.createTopics({ topics: [name], partitions: count, replicas: 1 })
    console.log(`topic ${name} created with ${count} partitions`)
  } finally {
    await admin.close()
  }
}

const produce = async (name, file) => {
  if (file === undefined) throw new Error("usage: produce TOPIC FILE")
  const producer = new Producer({ clientId: "kafka-tools", bootstrapBrokers, serializers: stringSerializers })
  const input = createInterface({ input: file === "-" ? process.stdin : createReadStream(file), crlfDelay: Infinity })
  let batch = []
  let sent = 0
  // Batches are sent one after another, so the records keep the file's order within a partition.
  const flush = async () => {
    if (batch.length === 0) return
    await producer.send({ messages: batch })
    sent += batch.length
    batch = []
  }
  try {
    for await (const line of input) {
      if (line.trim() === "") continue
      const key = keyOf(line)
      batch.push(key === undefined ? { topic: name, value: line } : { topic: name, key, value: line })
      if (batch.length >= 500) await flush()
    }
    await flush()
  } finally {
    await producer.close()
  }
  console.error(`produced ${sent} records to ${name}`)
}

const listTopics = async () => {
  const admin = new Admin({ clientId: "kafka-tools", bootstrapBrokers })
  try {
    return await admin.listTopics()
  } finally {
    await admin.close()
  }
}

const consume = async (name) => {
  const consumer = new Consumer({
    clientId: "kafka-tools",
    groupId: `kafka-tools-${process.pid}-${Date.now()}`,
    bootstrapBrokers,
    deserializers: stringDeserializers,
    autocommit: false
  })
  try {
    // No topic yet is no records yet (a dead-letter topic appears with its first dead letter):
    // said on stderr, so a mistyped name shows, but not a failure.
    if (!(await listTopics()).includes(name)) {
      console.error(`kafka consume: no topic ${name} (yet): nothing to print. A worker's dead-letter topic appears with its first dead letter.`)
      return
    }
    // Read up to the ends as they are now, so the command ends.
    const ends = (await consumer.listOffsets({ topics: [name] })).get(name) ?? []
    const pending = new Map(ends.map((end, partition) => [partition, BigInt(end)]).filter(([, end]) => end > 0n))
    if (pending.size === 0) return
    const stream = await consumer.consume({ topics: [name], mode: "earliest", autocommit: false, maxWaitTime: 200 })
    for await (const m of stream) {
      process.stdout.write(`${m.value}\n`)
      if (pending.has(m.partition) && m.offset + 1n >= pending.get(m.partition)) pending.delete(m.partition)
      if (pending.size === 0) break
    }
    await stream.close()
  } finally {
    await consumer.close(true)
  }
}

const commands = { topic, produce, consume }
const [command, name, ...rest] = process.argv.slice(2)
if (!(command in commands) || name === undefined) {
  console.error("usage: scripts/kafka topic NAME [PARTITIONS] | produce TOPIC FILE | consume TOPIC")
  process.exit(2)
}
commands[command](name, ...rest).catch((error) => {
  console.error(`kafka ${command}: ${error.message}`)
  process.exit(1)
})
