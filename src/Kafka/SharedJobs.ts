/**
 * When a bulk job shared on the suppressions topic (SuppressionTopic `followJobs`) is waited for.
 * Its record is dated by the worker that posted it; a date is only as good as that worker's clock,
 * and anyone who may write the topic can write one, so a date is bounded on both sides.
 */

/**
 * A job shared longer ago than this is not waited for: its owner's end was lost (a kill -9 as it
 * ended), and a job Mailjet no longer knows would be polled for ever.
 */
export const JOB_FORGOTTEN_AFTER_MS = 24 * 60 * 60 * 1000

/**
 * How far ahead of this worker's clock another's may run. A record dated later is refused: it would
 * outlive the day above (forged, or written by a clock far off), and synced clocks agree to seconds.
 */
export const JOB_CLOCK_SKEW_MS = 5 * 60 * 1000

/** Whether a job shared at `at` (ms since the epoch) is waited for at `now`, or why not. */
export const sharedJobVerdict = (at: number, now: number): "wait" | "forgotten" | "future" =>
  at > now + JOB_CLOCK_SKEW_MS ? "future" : now - at > JOB_FORGOTTEN_AFTER_MS ? "forgotten" : "wait"

/** The warning for a record refused as dated in the future: names its key (quoted, cut short) and job. */
export const futureJobWarning = (key: string, job: number, at: number, where: string) =>
  `suppressions: record ${JSON.stringify(key.slice(0, 80))} (bulk job ${job}, ${where}) is dated ${dated(at)}, beyond the ${
    JOB_CLOCK_SKEW_MS / 60_000
  } minutes a clock may run ahead: not waited for. Forged, or the clock of the worker that wrote it is wrong (check its NTP); a tombstone on the key removes it`

/** A record's date for a log line, whatever number it holds (1e400 reads as Infinity). */
const dated = (at: number) => {
  const d = new Date(at)
  return Number.isNaN(d.getTime()) ? String(at) : d.toISOString()
}
