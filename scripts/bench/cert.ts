/**
 * A throw-away self-signed certificate for 127.0.0.1, made at run time into the bench's temp dir
 * (never committed). Clients trust it through NODE_EXTRA_CA_CERTS: TLS verification stays on.
 */
import { execFileSync } from "node:child_process"
import * as Path from "node:path"

export interface Cert {
  readonly keyPath: string
  readonly certPath: string
}

/** ECDSA P-256, as most public APIs now serve; valid one day, for IP 127.0.0.1 only. */
export const makeCert = (dir: string): Cert => {
  const keyPath = Path.join(dir, "sim-key.pem")
  const certPath = Path.join(dir, "sim-cert.pem")
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", keyPath, "-out", certPath, "-days", "1",
      "-subj", "/CN=signal-mailjet bench simulator",
      "-addext", "subjectAltName=IP:127.0.0.1"
    ], { stdio: ["ignore", "ignore", "pipe"] })
  } catch (e) {
    throw new Error(`the bench needs openssl to make its certificate (apt-get install openssl): ${e instanceof Error ? e.message : String(e)}`)
  }
  return { keyPath, certPath }
}
