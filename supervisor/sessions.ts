/**
 * The registry of persistent shell sessions on this worker: what the session tools (handlers/session-tools.ts)
 * do once the pump has a job of theirs. Each session is hosted by one long task on the commands pool
 * (handlers/session-host.ts), which owns its shell; the registry talks to it over the task's port, one request
 * at a time per session, and answers each job with a {@link JobOutcome}.
 *
 * A session's states:
 *   starting -> live (idle, or running one exec) -> ended
 *   starting -> ended   (its cwd is no good, or its shell would not start)
 * It ends when asked (DELETE), when it has been idle for sessions.idleMinutes, when its project's working copy is
 * withdrawn (eviction, replacement, deletion), and at shutdown. Ending kills the shell and everything it runs.
 * An exec counts against the project's command slots (the pump's commands lane) only while it runs.
 */
import { randomBytes } from 'node:crypto';
import { relative } from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import type { SessionReport, SessionRequest } from '../handlers/protocol.js';
import type { SessionInfo } from '../handlers/session-tools.js';
import { fromSerialized, ToolhostError, toToolhostError } from '../lib/errors.js';
import type { Job, JobOutcome } from '../lib/jobs.js';
import type { SessionOp } from '../lib/tool.js';
import type { Logger } from './logger.js';
import type { Pools } from './pools.js';

interface Session {
  id: string;
  projectId: string;
  name: string | null;
  root: string;
  /** Where the shell starts, absolute. */
  cwd: string;
  createdAt: number;
  lastUsed: number;
  port: MessagePort;
  /** Settles when the host task has ended. */
  hosted: Promise<JobOutcome>;
  runningJob: string | null;
  execs: number;
  restarts: number;
  seq: number;
  replies: Map<number, (outcome: JobOutcome) => void>;
}

/** What the registry needs. */
export interface SessionsOptions {
  /** The configuration in effect (sessions.* is read on each use: a reload applies to new sessions and the sweep). */
  config: () => Config;
  pools: Pools;
  /** Cancels a running command job (an exec), as DELETE /jobs/:id does. */
  cancelJob: (jobId: string) => void;
  log: Logger;
  /** The clock of idleness (epoch ms); tests move it. */
  now?: (() => number) | undefined;
}

/** A request before the registry numbers it. */
type Unsequenced<R> = R extends unknown ? Omit<R, 'seq'> : never;

/** The payload fields of the session jobs, as the tools' schemas validated them. */
interface Payload {
  project_id?: string;
  session_id?: string;
  cwd?: string;
  env?: Record<string, string>;
  name?: string;
}

/** Persistent shell sessions on this worker. An actor: start(), close(). */
export class Sessions {
  readonly #o: SessionsOptions;
  readonly #sessions = new Map<string, Session>();
  /**
   * Creations under way: counted against the limits before their shell is up, and found by name, so two
   * creations of one name make one session.
   */
  readonly #starting = new Set<{ projectId: string; name: string | undefined; making: Promise<Session> }>();
  #sweepTimer: NodeJS.Timeout | undefined;
  #closed = false;

  readonly #now: () => number;

  constructor(o: SessionsOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Starts the idle sweep. */
  start(): void {
    this.#scheduleSweep();
  }

  /** Does what a session job asks; `root` is the project's working copy, `port` an exec's command channel. */
  async run(op: SessionOp, job: Job, root: string, port?: MessagePort): Promise<JobOutcome> {
    try {
      const p = job.payload as Payload;
      switch (op) {
        case 'create':
          return { ok: true, value: await this.#create(job.projectId, root, p) };
        case 'exec':
          return await this.#exec(this.#get(p.session_id!), job, port!);
        case 'restart':
          return { ok: true, value: await this.#restart(this.#get(p.session_id!)) };
        case 'end':
          await this.end(this.#get(p.session_id!).id);
          return { ok: true, value: { session_id: p.session_id!, ended: true } };
        case 'list':
          return { ok: true, value: { sessions: this.list(job.projectId) } };
      }
    } catch (err) {
      return { ok: false, error: toToolhostError(err).toJSON() };
    }
  }

  /** The project's live sessions, oldest first. */
  list(projectId: string): SessionInfo[] {
    return [...this.#sessions.values()].filter((s) => s.projectId === projectId).map((s) => this.#info(s));
  }

  /** How many sessions are alive, in all and running an exec. */
  stats(): { alive: number; running: number } {
    let running = 0;
    for (const s of this.#sessions.values()) if (s.runningJob) running++;
    return { alive: this.#sessions.size, running };
  }

  /** Ends session `id` (a running exec is cancelled first); resolves once its shell is gone. */
  async end(id: string): Promise<void> {
    const s = this.#sessions.get(id);
    if (!s) return;
    this.#sessions.delete(id);
    if (s.runningJob) this.#o.cancelJob(s.runningJob);
    await this.#request(s, { t: 'end' }).catch(() => {});
    s.port.close();
    await s.hosted;
  }

  /** Ends every session of a project (its working copy is going away). */
  async endProject(projectId: string): Promise<void> {
    await Promise.all([...this.#sessions.values()].filter((s) => s.projectId === projectId).map((s) => this.end(s.id)));
  }

  /** Stops the sweep and ends every session. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#sweepTimer);
    await Promise.all([...this.#starting].map((c) => c.making.catch(() => {})));
    await Promise.all([...this.#sessions.keys()].map((id) => this.end(id)));
  }

  #get(id: string): Session {
    const s = this.#sessions.get(id);
    if (!s) {
      throw new ToolhostError(
        'session_not_found',
        `no session ${id}: it never existed, or it ended (DELETE, idle for sessions.idleMinutes, its project was evicted, replaced or deleted, or the server restarted); start one with POST /sessions`,
        { session_id: id },
      );
    }
    return s;
  }

  async #create(projectId: string, root: string, p: Payload): Promise<SessionInfo & { created: boolean }> {
    if (this.#closed) throw new ToolhostError('shutting_down', 'the server is shutting down; start the session later');
    const same = (s: { projectId: string; name: string | null | undefined }): boolean => p.name !== undefined && s.projectId === projectId && s.name === p.name;
    const named = [...this.#sessions.values()].find(same) ?? [...this.#starting].find(same)?.making;
    if (named) return { ...this.#info(await named), created: false };
    this.#checkLimits(projectId);
    // Registered before the first await: concurrent creations see it.
    const starting = { projectId, name: p.name, making: this.#start(projectId, root, p) };
    this.#starting.add(starting);
    try {
      return { ...this.#info(await starting.making), created: true };
    } finally {
      this.#starting.delete(starting);
    }
  }

  #checkLimits(projectId: string): void {
    const { sessions: limits } = this.#o.config();
    const all = this.#sessions.size + this.#starting.size;
    const mine = [...this.#sessions.values(), ...this.#starting].filter((s) => s.projectId === projectId).length;
    const todo = `end one with DELETE /sessions/{session_id} (GET /sessions?project_id=${projectId} lists them), or wait: idle sessions end after ${limits.idleMinutes} minutes`;
    if (mine >= limits.maxPerProject) {
      throw new ToolhostError('session_limit', `project "${projectId}" has ${mine} sessions, its most (sessions.maxPerProject); ${todo}`, {
        limit: limits.maxPerProject,
      });
    }
    if (all >= limits.max) throw new ToolhostError('session_limit', `this server has ${all} sessions, its most (sessions.max); ${todo}`, { limit: limits.max });
  }

  async #start(projectId: string, root: string, p: Payload): Promise<Session> {
    const id = `s_${randomBytes(12).toString('hex')}_${projectId}`;
    const { port1, port2 } = new MessageChannel();
    // A rejection means the host's thread died (Piscina): the session is over all the same.
    const hosted = this.#o.pools
      .host({ kind: 'session', id, projectId, root, cwd: p.cwd, env: p.env, port: port2 })
      .catch((err: unknown): JobOutcome => ({ ok: false, error: new ToolhostError('internal', `the session's thread died: ${String(err)}`).toJSON() }));
    const now = this.#now();
    const s: Session = {
      id,
      projectId,
      name: p.name ?? null,
      root,
      cwd: root,
      createdAt: now,
      lastUsed: now,
      port: port1,
      hosted,
      runningJob: null,
      execs: 0,
      restarts: 0,
      seq: 0,
      replies: new Map(),
    };
    const ready = new Promise<string>((resolve) => {
      port1.on('message', (m: SessionReport) => {
        if (m.t === 'ready') return resolve(m.cwd);
        s.replies.get(m.seq)?.(m.outcome);
        s.replies.delete(m.seq);
      });
    });
    const failed = hosted.then((outcome) => {
      if (!outcome.ok) throw fromSerialized(outcome.error);
      return null;
    });
    const cwd = await Promise.race([ready, failed]).catch((err: unknown) => {
      port1.close();
      throw err;
    });
    if (cwd === null) throw new ToolhostError('internal', 'the session ended as it started');
    s.cwd = cwd;
    this.#sessions.set(id, s);
    if (this.#closed) {
      await this.end(id); // it came up while the registry closed: nothing would end it later
      throw new ToolhostError('shutting_down', 'the server is shutting down; start the session later');
    }
    // However the host ends (an end, a crash of its thread), the session is gone and waiting requests fail.
    void hosted.then((outcome) => {
      if (this.#sessions.get(id) === s) this.#sessions.delete(id);
      const gone: JobOutcome = { ok: false, error: new ToolhostError('session_not_found', `session ${id} ended`).toJSON() };
      for (const done of s.replies.values()) done(outcome.ok ? gone : outcome);
      s.replies.clear();
      if (!outcome.ok) this.#o.log.warn({ session_id: id, err: outcome.error.message }, 'session host ended with an error');
    });
    this.#o.log.info({ session_id: id, project_id: projectId }, 'session started');
    return s;
  }

  /** Sends a request to the session's host and waits for its reply. */
  #request(s: Session, m: Unsequenced<SessionRequest>, transfer: MessagePort[] = []): Promise<JobOutcome> {
    const seq = ++s.seq;
    return new Promise<JobOutcome>((resolve) => {
      s.replies.set(seq, resolve);
      try {
        s.port.postMessage({ ...m, seq }, transfer);
      } catch (err) {
        s.replies.delete(seq);
        resolve({ ok: false, error: toToolhostError(err).toJSON() });
      }
    });
  }

  async #exec(s: Session, job: Job, port: MessagePort): Promise<JobOutcome> {
    if (s.runningJob) {
      throw new ToolhostError(
        'session_busy',
        `session ${s.id} is running job ${s.runningJob}; a shell runs one command at a time: wait for it (job_status) or cancel it (job_cancel), or use another session`,
        { session_id: s.id, job_id: s.runningJob },
      );
    }
    s.runningJob = job.id;
    s.lastUsed = this.#now();
    try {
      const outcome = await this.#request(s, { t: 'exec', job, port }, [port]);
      s.execs++;
      if (outcome.ok && (outcome.value as { session?: { restarted: boolean } }).session?.restarted) s.restarts++;
      return outcome;
    } finally {
      s.runningJob = null;
      s.lastUsed = this.#now();
    }
  }

  async #restart(s: Session): Promise<SessionInfo> {
    if (s.runningJob) this.#o.cancelJob(s.runningJob);
    const outcome = await this.#request(s, { t: 'restart' });
    if (!outcome.ok) throw fromSerialized(outcome.error);
    s.restarts++;
    s.lastUsed = this.#now();
    return this.#info(s);
  }

  #info(s: Session): SessionInfo {
    return {
      session_id: s.id,
      project_id: s.projectId,
      name: s.name,
      cwd: relative(s.root, s.cwd) || '.',
      created_at: new Date(s.createdAt).toISOString(),
      last_used_at: new Date(s.lastUsed).toISOString(),
      running_job_id: s.runningJob,
      execs: s.execs,
      restarts: s.restarts,
    };
  }

  #scheduleSweep(): void {
    if (this.#closed) return;
    const idleMs = this.#o.config().sessions.idleMinutes * 60_000;
    const every = Math.min(60_000, idleMs / 4);
    this.#sweepTimer = setTimeout(() => void this.sweep().finally(() => this.#scheduleSweep()), every * (0.8 + Math.random() * 0.4));
    this.#sweepTimer.unref();
  }

  /** Ends the sessions idle for sessions.idleMinutes (nothing running, no exec since). */
  async sweep(now = this.#now()): Promise<void> {
    const idleMs = this.#o.config().sessions.idleMinutes * 60_000;
    const idle = [...this.#sessions.values()].filter((s) => !s.runningJob && s.lastUsed + idleMs <= now);
    for (const s of idle) this.#o.log.info({ session_id: s.id, project_id: s.projectId }, 'idle session ended');
    await Promise.all(idle.map((s) => this.end(s.id)));
  }
}
