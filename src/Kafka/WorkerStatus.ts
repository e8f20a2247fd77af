/** What `serve`'s /ready and /health report. */
export interface WorkerStatus {
  readonly preflight: boolean
  readonly joined: boolean
  readonly paused: boolean
  /** What the worker waits for before it reads, and until when. */
  readonly waiting?: string
}
