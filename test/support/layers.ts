/** Layers the tests use: the simulator and client for these credentials, and the delivery stack (Stack.ts). */
import { Duration, Layer, Logger } from "effect"
import { Delivery } from "../../src/Delivery/Delivery.js"
import type { DeliverySettings } from "../../src/Delivery/DeliveryConfig.js"
import { givenStack } from "../../src/Delivery/Stack.js"
import { MailjetClient } from "../../src/Mailjet/MailjetClient.js"
import { MailjetConfig } from "../../src/Mailjet/MailjetConfig.js"
import { DefaultPreset, type Preset } from "../../src/Preset/Preset.js"
import * as Simulator from "../../src/Simulator/Simulator.js"

export const KEY = "test-public-key-7f3a"
export const SECRET = "test-secret-key-9c1e"

export const presetProperties = Array.from(DefaultPreset.datatypes, ([name, datatype]) => ({ name, datatype }))

/** Simulator options: these credentials, list 1 and the Default preset's properties, unless `options` says otherwise. */
export const simulatorOptions = (options: Partial<Simulator.LayerOptions> = {}): Simulator.LayerOptions => ({
  apiKey: KEY,
  secretKey: SECRET,
  lists: [{ id: 1, name: "Signal" }],
  properties: presetProperties,
  ...options
})

/** A simulator with list 1 and the Default preset's properties, for these credentials. */
export const simulatorLayer = (seed: number) => Simulator.layer(simulatorOptions({ seed }))

export const clientLayer = (
  baseUrl: string,
  options: { readonly listId?: number; readonly secret?: string; readonly timeout?: Duration.DurationInput } = {}
) =>
  MailjetClient.layer.pipe(
    Layer.provide(MailjetConfig.layerFrom({
      apiKey: KEY,
      secretKey: options.secret ?? SECRET,
      listId: options.listId ?? 1,
      baseUrl,
      timeout: options.timeout ?? Duration.seconds(5)
    }))
  )

/**
 * Log lines of every delivery run the tests start, in logfmt, instead of on the test output:
 * a test that cares reads them (and empties the array first).
 */
export const capturedLogs: Array<string> = []
export const captureLogs = Logger.replace(
  Logger.defaultLogger,
  Logger.map(Logger.logfmtLogger, (line) => {
    capturedLogs.push(line)
  })
)

/** Delivery wired to `baseUrl`, with fast retries unless told otherwise: the tests' stack, from Stack.ts like every other. */
export const deliveryLayer = (
  baseUrl: string,
  settings: Partial<DeliverySettings> = {},
  options: { readonly listId?: number; readonly secret?: string; readonly preset?: Preset } = {}
) =>
  givenStack(Delivery.layer, {
    mailjet: { apiKey: KEY, secretKey: options.secret ?? SECRET, listId: options.listId ?? 1, baseUrl, timeout: Duration.seconds(5) },
    preset: options.preset ?? DefaultPreset,
    settings: { maxRps: 10_000, retryBase: Duration.millis(5), retryMax: Duration.millis(50), ...settings }
  }).pipe(Layer.merge(captureLogs))
