/** Effect's metric registry in the Prometheus text exposition format (version 0.0.4), for /metrics. */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"

const escape = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const labels = (tags: ReadonlyArray<{ readonly key: string; readonly value: string }>, extra = "") => {
  const parts = tags.map((t) => `${t.key}="${escape(t.value)}"`)
  if (extra !== "") parts.push(extra)
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

export const render = Effect.map(Metric.snapshot, (pairs) => {
  const families = new Map<string, { type: string; help: string; lines: Array<string> }>()
  const family = (name: string, type: string, help: string | undefined) => {
    let f = families.get(name)
    if (f === undefined) {
      f = { type, help: help ?? name, lines: [] }
      families.set(name, f)
    }
    return f
  }
  for (const { metricKey: key, metricState: state } of pairs) {
    // Effect's own fiber metrics are for profiling, not for this endpoint.
    if (key.name.startsWith("effect_")) continue
    const tags = key.tags
    if (MetricState.isCounterState(state)) {
      family(key.name, "counter", Option.getOrUndefined(key.description)).lines.push(`${key.name}${labels(tags)} ${state.count}`)
    } else if (MetricState.isGaugeState(state)) {
      family(key.name, "gauge", Option.getOrUndefined(key.description)).lines.push(`${key.name}${labels(tags)} ${state.value}`)
    } else if (MetricState.isHistogramState(state)) {
      const f = family(key.name, "histogram", Option.getOrUndefined(key.description))
      for (const [bound, count] of state.buckets) {
        const le = Number.isFinite(bound) ? String(bound) : "+Inf"
        f.lines.push(`${key.name}_bucket${labels(tags, `le="${le}"`)} ${count}`)
      }
      if (!state.buckets.some(([b]) => !Number.isFinite(b))) {
        f.lines.push(`${key.name}_bucket${labels(tags, "le=\"+Inf\"")} ${state.count}`)
      }
      f.lines.push(`${key.name}_sum${labels(tags)} ${state.sum}`, `${key.name}_count${labels(tags)} ${state.count}`)
    }
  }
  let out = ""
  for (const [name, f] of families) {
    out += `# HELP ${name} ${escape(f.help)}\n# TYPE ${name} ${f.type}\n${f.lines.join("\n")}\n`
  }
  return out
})
