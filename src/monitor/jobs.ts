/**
 * QEMU's background jobs as QMP shows them (qapi/job.json): a job has an id, a type and a
 * status that goes created → running → waiting → pending → concluded, each change sent as a
 * JOB_STATUS_CHANGE event; `query-jobs` lists them, and a concluded job stays listed (with
 * its error, if it failed) until `job-dismiss`. Vireo's jobs (snapshot-save, snapshot-load,
 * snapshot-delete) are dismissed by hand, as QEMU's snapshot jobs are.
 */
export type JobStatus = 'created' | 'running' | 'waiting' | 'pending' | 'concluded' | 'null';

interface Job {
  id: string;
  type: string;
  status: JobStatus;
  error?: string;
  done: boolean;
}

export class JobError extends Error {}

export class Jobs {
  private readonly jobs = new Map<string, Job>();

  /** @param emit sends an event to the monitors */
  constructor(private readonly emit: (name: string, data: Record<string, unknown>) => void) {}

  private set(job: Job, status: JobStatus): void {
    job.status = status;
    this.emit('JOB_STATUS_CHANGE', { status, id: job.id });
  }

  /** Starts job `id` of `type` running `work`; returns at once (the job reports through events and query-jobs). */
  start(id: string, type: string, work: () => Promise<void>): void {
    if (!/^[A-Za-z][A-Za-z0-9._-]*$/.test(id)) throw new JobError(`Invalid job ID '${id}'`);
    if (this.jobs.has(id)) throw new JobError(`Job ID '${id}' already in use`);
    const job: Job = { id, type, status: 'created', done: false };
    this.jobs.set(id, job);
    // As in QEMU, the command's answer goes out before the job's first event.
    setImmediate(() => {
      this.set(job, 'created');
      this.set(job, 'running');
      void work().catch((e: unknown) => {
        job.error = e instanceof Error ? e.message : String(e);
      }).finally(() => {
        job.done = true;
        this.set(job, 'waiting');
        this.set(job, 'pending');
        this.set(job, 'concluded');
      });
    });
  }

  /** query-jobs */
  list(): Array<Record<string, unknown>> {
    return [...this.jobs.values()].map((j) => ({
      id: j.id,
      type: j.type,
      status: j.status,
      'current-progress': j.done ? 1 : 0,
      'total-progress': 1,
      ...(j.error !== undefined ? { error: j.error } : {}),
    }));
  }

  /** job-dismiss: forgets a concluded job. */
  dismiss(id: string): void {
    const job = this.jobs.get(id);
    if (job === undefined) throw new JobError(`Job not found`);
    if (job.status !== 'concluded') throw new JobError(`Job '${id}' in state '${job.status}' cannot accept command verb 'dismiss'`);
    this.jobs.delete(id);
    this.set(job, 'null');
  }
}
