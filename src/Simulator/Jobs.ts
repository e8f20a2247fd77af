/**
 * Bulk jobs (`managemanycontacts`): a POST answers 201 with a JobID; the job moves through
 * statuses over its configured duration and applies its contacts when it ends, each checked with
 * the very rules of `managecontact` (it is applied through it); rejected contacts go to the job's
 * error file. Jobs are advanced lazily, before each request and each read of the account, in the
 * order they are due (the order they were created, unless one is stuck and lands late), so a
 * job's contacts land atomically.
 */
import type { Faults, JobFate } from "./Faults.js"
import { envelope, error, NOT_FOUND, type Outcome, reply } from "./Replies.js"
import type { ListRow, State } from "./State.js"
import { isoSeconds } from "./State.js"
import { type Body, isJsonObject, type Json, type JsonObject, parseObject, readFields } from "./Validation.js"

/** One contact applied to one list (or to none: the account's global list), as managecontact would. */
export type ApplyContact = (list: ListRow | undefined, body: Body, now: number) => Outcome

interface Job {
  readonly id: number
  readonly startedAt: number
  readonly dueAt: number
  readonly fate: JobFate
  readonly lists: ReadonlyArray<{ readonly list: ListRow | undefined; readonly listId: number; readonly action: string }>
  contacts: ReadonlyArray<JsonObject> | undefined
  status: string
  count: number
  error: string
  errors: Array<{ readonly Email: Json; readonly ErrorMessage: string; readonly ErrorInfo: unknown }>
}

const ACTIONS = new Set(["addforce", "addnoforce", "unsub", "remove"])

// ---- UNCONFIRMED live shapes, all here (mailjet-api.md §4) ----------------------------------
// The poll reply follows the GUIDE's fields; the status names are the GUIDE's set. The error
// file's path is the one Mailjet staff gave (mailjet-apiv3-php#73), its format is a guess: one
// entry per rejected contact, with the managecontact 400 body's ErrorMessage and ErrorInfo.
const RUNNING_STATUSES = ["Allocated", "Upload", "Prepare", "Importing"] as const
const errorFilePath = (id: number) => `DATA/batchjob/${id}/JSONError/application:json/LAST`
const renderJob = (job: Job) => ({
  Status: job.status,
  JobStart: isoSeconds(job.startedAt),
  JobEnd: job.status === "Completed" || job.status === "Error" || job.status === "Abort" ? isoSeconds(job.dueAt) : "",
  Count: job.count,
  Error: job.error,
  ErrorFile: job.errors.length > 0 ? errorFilePath(job.id) : "",
  ContactsLists: job.lists.map((l) => ({ ListID: l.listId, Action: l.action }))
})
const renderErrorFile = (job: Job) => JSON.stringify(job.errors)
// ---------------------------------------------------------------------------------------------

export const makeJobs = (state: State, apply: ApplyContact, faults: Faults) => {
  const jobs = new Map<number, Job>()
  const pending: Array<Job> = []
  let nextId = 35800

  const finish = (job: Job, now: number) => {
    if (job.fate === "Error" || job.fate === "Abort") {
      job.status = job.fate
      job.error = job.fate === "Error" ? "Internal error while importing contacts" : "The job was aborted"
    } else {
      for (const contact of job.contacts ?? []) {
        let rejected: { readonly ErrorMessage: string; readonly ErrorInfo: unknown } | undefined
        for (const l of job.lists.length === 0 ? [{ list: undefined, action: "addnoforce" }] : job.lists) {
          const out = apply(l.list, { raw: undefined, json: { value: { ...contact, Action: l.action } }, parseError: undefined }, now)
          if (out._tag === "Reply" && out.status >= 400) {
            const body = JSON.parse(out.body) as { ErrorMessage: string; ErrorInfo: unknown }
            rejected = { ErrorMessage: body.ErrorMessage, ErrorInfo: body.ErrorInfo }
            break
          }
        }
        if (rejected !== undefined) job.errors.push({ Email: contact["Email"] ?? null, ...rejected })
      }
      job.status = "Completed"
    }
    job.count = job.contacts?.length ?? 0
    // The contacts are not needed any more: a benchmark's jobs would otherwise hold them all.
    job.contacts = undefined
  }

  /** Ends every job whose time has come, oldest first; moves the others along their statuses. */
  const advance = (now: number): void => {
    // Kept in due order (stable): a stuck job that lands late lets later jobs pass it.
    while (pending.length > 0 && pending[0]!.dueAt <= now) finish(pending.shift()!, now)
    for (const job of pending) {
      if (job.fate === "Stuck") continue
      const share = job.dueAt === job.startedAt ? 1 : (now - job.startedAt) / (job.dueAt - job.startedAt)
      job.status = RUNNING_STATUSES[Math.min(3, Math.max(0, Math.floor(share * 4)))]!
    }
  }

  const post = (
    lists: ReadonlyArray<{ readonly listId: number; readonly action: unknown }>,
    contacts: Json | undefined,
    now: number
  ): Outcome => {
    if (!Array.isArray(contacts)) return error(400, "Object properties invalid", "MJ08 Property Contacts is invalid: an array is required")
    const plan = faults.job()
    if (contacts.length > plan.maxContacts) {
      return error(400, "Object properties invalid", `MJ08 Property Contacts is invalid: at most ${plan.maxContacts} contacts per call`)
    }
    const targets: Array<Job["lists"][number]> = []
    for (const l of lists) {
      const action = typeof l.action === "string" ? l.action.toLowerCase() : ""
      if (!ACTIONS.has(action)) return error(400, "Object properties invalid", { Action: `Invalid action: ${String(l.action)}` })
      const list = state.lists.get(l.listId)
      if (list === undefined || list.deleted) return NOT_FOUND
      targets.push({ list, listId: l.listId, action })
    }
    const rows: Array<JsonObject> = []
    for (const c of contacts) {
      if (!isJsonObject(c)) return error(400, "Object properties invalid", "MJ08 Property Contacts is invalid: objects are required")
      // IsExcludedFromCampaigns is a bulk field managecontact does not take; it is not simulated.
      const { IsExcludedFromCampaigns: _, ...rest } = c
      rows.push(rest)
    }
    const job: Job = {
      id: nextId++,
      startedAt: now,
      dueAt: now + plan.durationMs,
      fate: plan.fate,
      lists: targets,
      contacts: rows,
      status: RUNNING_STATUSES[0],
      count: 0,
      error: "",
      errors: []
    }
    jobs.set(job.id, job)
    // A stuck job stays `Importing`: for ever, or until it lands late.
    if (job.fate === "Stuck") job.status = "Importing"
    if (Number.isFinite(job.dueAt)) {
      let i = pending.length
      while (i > 0 && pending[i - 1]!.dueAt > job.dueAt) i--
      pending.splice(i, 0, job)
    }
    return envelope(201, [{ JobID: job.id }])
  }

  return {
    advance,
    /** Unfinished jobs are dropped: one stuck in an earlier test must not land in the next. */
    reset: (): void => {
      pending.length = 0
    },
    /** `POST contactslist/{id}/managemanycontacts`: `{"Action":…,"Contacts":[…]}`. */
    postToList: (list: ListRow, body: Body, now: number): Outcome => {
      const parsed = parseObject(body)
      if (!parsed.ok) return parsed.outcome
      const read = readFields(parsed.value, "TContactslistManageManyContacts", ["Action", "Contacts"])
      if (!read.ok) return read.outcome
      return post([{ listId: list.id, action: read.fields.Action }], read.fields.Contacts, now)
    },
    /** `POST contact/managemanycontacts`: `{"ContactsLists":[{"ListID":…,"Action":…}],"Contacts":[…]}`. */
    postToContacts: (body: Body, now: number): Outcome => {
      const parsed = parseObject(body)
      if (!parsed.ok) return parsed.outcome
      const read = readFields(parsed.value, "TContactManageManyContacts", ["ContactsLists", "Contacts"])
      if (!read.ok) return read.outcome
      const raw = read.fields.ContactsLists ?? []
      if (!Array.isArray(raw)) return error(400, "Object properties invalid", "MJ08 Property ContactsLists is invalid: an array is required")
      const lists: Array<{ listId: number; action: unknown }> = []
      for (const l of raw) {
        if (!isJsonObject(l) || typeof l["ListID"] !== "number") {
          return error(400, "Object properties invalid", "MJ08 Property ContactsLists is invalid: each needs a numeric ListID and an Action")
        }
        lists.push({ listId: l["ListID"], action: l["Action"] })
      }
      return post(lists, read.fields.Contacts, now)
    },
    get: (id: string, now: number): Outcome => {
      advance(now)
      const job = /^\d+$/.test(id) ? jobs.get(Number(id)) : undefined
      return job === undefined ? NOT_FOUND : envelope(200, [renderJob(job)])
    },
    /** `GET /v3/DATA/batchjob/{id}/JSONError/application:json/LAST`, segments after `DATA`. */
    errorFile: (segments: ReadonlyArray<string>): Outcome => {
      const id = segments[0]?.toLowerCase() === "batchjob" ? segments[1] : undefined
      const job = id !== undefined && /^\d+$/.test(id) ? jobs.get(Number(id)) : undefined
      if (job === undefined || job.errors.length === 0 || segments[2]?.toLowerCase() !== "jsonerror") return NOT_FOUND
      return reply(200, renderErrorFile(job))
    }
  }
}

export type Jobs = ReturnType<typeof makeJobs>
