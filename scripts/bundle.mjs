/**
 * Builds the `signal-mailjet` executable: src/bin.ts and everything it imports, dependencies
 * included, as one file, dist/bin.js. The library (dist/index.js, built by tsc) stays as modules,
 * so that a host shares its own copy of Effect.
 *
 * One file instead of 1,262 modules: `--help` peaks at 80 MB instead of 97 and starts in half the
 * CPU, and a bulk backfill holds less (BENCHMARKS.md). Identifiers are not mangled: names stay
 * readable in an internal error's trace, and mangling measured 12 MB more at start. Licence
 * comments go to dist/bin.js.LEGAL.txt, so the file is ASCII: V8 holds a script's source as one
 * string, two bytes a character if a single one is not Latin-1 (8 MB instead of 2.7).
 */
import { build } from "esbuild"
import { chmodSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))

/**
 * The Kafka client's compression codecs (wasm-utils) read their WebAssembly from a file beside
 * their module, which a bundle does not have; the package ships the same module with the
 * WebAssembly inline (dist/bundled.js) for bundles.
 */
const inlineWasm = {
  name: "inline-wasm",
  setup(build) {
    build.onResolve({ filter: /^@platformatic\/wasm-utils$/ }, async (args) => {
      if (args.pluginData === "inline-wasm") return undefined
      const found = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: "inline-wasm" })
      if (found.errors.length > 0) return { errors: found.errors }
      return { path: join(dirname(found.path), "bundled.js") }
    })
  }
}

/**
 * `simulate` holds a whole Mailjet account: about 1 KB a contact (BENCHMARKS.md), so a
 * backfill's million contacts cannot fit the 128 MB the first line of bin.ts gives every command
 * (it died of V8's out-of-memory at about 115,000). The first line cannot differ by command, so
 * `simulate` runs itself again without the heap's bounds (V8's own limit, sized from the
 * machine's memory) and waits: the parent has evaluated nothing but this (about 45 MB). The child
 * is told of the parent's end through an IPC channel (a kill -9 of the parent included), and ends
 * as on SIGTERM; SIGTERM and SIGHUP sent to the parent are passed on; SIGINT from a terminal
 * reaches both (one process group), so the parent only waits for the child's exit.
 */
const simulateHeap = `
if (process.argv[2] === "simulate" && process.env.SIGNAL_MAILJET_SIMULATE_CHILD === undefined && process.execArgv.some((a) => a.startsWith("--max-old-space-size"))) {
  const { spawn } = await import("node:child_process");
  const { constants } = await import("node:os");
  const child = spawn(process.execPath, [...process.execArgv.filter((a) => !/^--(max-(old|semi)-space-size|initial-heap-size)=/.test(a)), ...process.argv.slice(1)], {
    stdio: ["inherit", "inherit", "inherit", "ipc"],
    env: { ...process.env, SIGNAL_MAILJET_SIMULATE_CHILD: "1" }
  });
  for (const signal of ["SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  process.on("SIGINT", () => undefined);
  const [code, signal] = await new Promise((resolve) => child.on("exit", (c, s) => resolve([c, s])));
  process.exit(code ?? 128 + (constants.signals[signal] ?? 0));
}
if (process.env.SIGNAL_MAILJET_SIMULATE_CHILD !== undefined && process.channel !== undefined) {
  process.channel.unref();
  process.on("disconnect", () => process.kill(process.pid, "SIGTERM"));
}
`

/**
 * undici's index loads all of it (fetch, cookies, WebSocket, mocks: about 50 ms of start-up); the
 * executable uses its Pool alone (src/Mailjet/MailjetHttp.ts), so the bundle takes just that. The
 * library keeps importing "undici".
 */
const undiciPool = {
  name: "undici-pool",
  setup(build) {
    build.onResolve({ filter: /^undici$/ }, (args) =>
      args.importer.startsWith(join(root, "src")) ? { path: "undici-pool", namespace: "undici-pool" } : undefined)
    build.onLoad({ filter: /.*/, namespace: "undici-pool" }, () => ({
      contents: "export { default as Pool } from 'undici/lib/dispatcher/pool.js'",
      resolveDir: root,
      loader: "js"
    }))
  }
}

await build({
  absWorkingDir: root,
  entryPoints: ["src/bin.ts"],
  outfile: "dist/bin.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "external",
  charset: "ascii",
  // The CommonJS dependencies require Node's built-ins, and an ES module has no `require` of its own.
  // Then `simulate` gets its own heap (simulateHeap, above), before anything else is evaluated.
  banner: { js: "import { createRequire as __signalMailjetRequire } from 'node:module'; const require = __signalMailjetRequire(import.meta.url);\n" + simulateHeap },
  plugins: [inlineWasm, undiciPool],
  logLevel: "warning"
})
// Run as a user runs it: through its first line, which sets the heap's bounds (src/bin.ts).
chmodSync(`${root}dist/bin.js`, 0o755)
