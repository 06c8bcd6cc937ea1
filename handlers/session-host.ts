/**
 * The pool-thread side of a persistent shell session: one long task on the commands pool that owns the session's
 * shell (lib/process/session-shell.ts) for as long as the session lives, and runs the execs the supervisor sends
 * it (supervisor/sessions.ts) one at a time, each with its own logs, progress messages and cancel channel, as a
 * command job has. A shell that did not survive an exec (an `exit`, a timeout, a cancel) is started again at once,
 * so the next exec finds one; the exec's answer says so (and so does the next one's, if the shell died between).
 */
import type { MessagePort } from 'node:worker_threads';
import type { Config } from '../config/schema.js';
import { errnoCode, ToolhostError, toToolhostError } from '../lib/errors.js';
import type { Job, JobOutcome } from '../lib/jobs.js';
import { createJobCgroup, type JobCgroup } from '../lib/process/cgroup.js';
import { OutputBuffer } from '../lib/process/output-buffer.js';
import { commandEnv } from '../lib/process/run-command.js';
import { launchArgv, planOf } from '../lib/process/sandbox.js';
import { SessionShell, SHELL_DRIVER } from '../lib/process/session-shell.js';
import { commandLogs, commandPlace, commandResult, type ExecuteResult } from './command-run.js';
import type { ControlMessage, SessionReport, SessionRequest, SessionTask } from './protocol.js';

/** What an exec job carries (session-tools.ts validated it). */
interface ExecPayload {
  session_id: string;
  command: string;
  timeout_s?: number | undefined;
  max_output_chars?: number | undefined;
}

/** How long a shell may take to start (a cold sandbox, a loaded machine). */
const START_MS = 30_000;

/** Runs a session until it is ended; rejects (the session never ran) when its cwd or its shell is no good. */
export async function hostSession(task: SessionTask, config: Config): Promise<void> {
  const c = config.commands;
  const place = commandPlace({ root: task.root, config, projectId: task.projectId }, task.cwd);
  const cgroup: JobCgroup | null = c.limits.processes > 0 ? createJobCgroup(task.id, c.limits.processes) : null;
  const plan = planOf(c, config.dataDir);
  const start = (): Promise<SessionShell> =>
    SessionShell.start({
      launch: launchArgv({
        command: SHELL_DRIVER,
        cwd: place.cwd,
        root: task.root,
        home: place.home,
        env: commandEnv({ home: place.home, env: task.env, jobId: task.id, path: c.path }),
        limits: c.limits,
        cgroupProcs: cgroup?.procsFile,
        owner: place.owner,
        plan,
      }),
      marker: task.id,
      killGraceMs: c.killGraceS * 1000,
      nice: c.nice,
      treeMembers: cgroup?.pids,
      pidNamespace: plan.mode === 'bwrap',
      startMs: START_MS,
    });
  let shell: SessionShell;
  try {
    shell = await start();
  } catch (err) {
    await cgroup?.remove();
    throw new ToolhostError('internal', `could not start the session's shell: ${(err as Error).message}`);
  }
  const port = task.port;
  const reply = (seq: number, outcome: JobOutcome): void => port.postMessage({ t: 'reply', seq, outcome } satisfies SessionReport);
  port.postMessage({ t: 'ready', cwd: place.cwd } satisfies SessionReport);

  // Requests are handled one at a time, in order (the supervisor sends an exec only to an idle session).
  let chain = Promise.resolve();
  let ended: () => void = () => {};
  const over = new Promise<void>((resolve) => {
    ended = resolve;
  });
  const handle = async (m: SessionRequest): Promise<void> => {
    try {
      if (m.t === 'exec') {
        // A shell that died since its last exec (TMOUT, a kill from outside) is replaced, and the answer says so.
        const dead = !shell.alive;
        if (dead) shell = await start();
        const out = await runExec(shell, m.job, m.port, config);
        if (dead && out.session) out.session.restarted = true;
        reply(m.seq, { ok: true, value: out });
        if (!shell.alive) shell = await start(); // the next exec finds a shell (its answer said "restarted")
        return;
      }
      await shell.end();
      if (m.t === 'end') {
        reply(m.seq, { ok: true, value: null });
        return ended();
      }
      shell = await start();
      reply(m.seq, { ok: true, value: null });
    } catch (err) {
      reply(m.seq, { ok: false, error: toToolhostError(err).toJSON() });
      if (!shell.alive) ended(); // no shell and none to be had: the session is over
    }
  };
  port.on('message', (m: SessionRequest) => {
    chain = chain.then(() => handle(m));
  });
  // A closed port (the supervisor is gone or dropped the session) ends it too.
  port.on('close', () => ended());
  try {
    await over;
  } finally {
    port.close();
    await shell.end();
    await cgroup?.remove().catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw err;
    });
  }
}

/** Runs one exec job on the shell: its output logged and posted like a command's, its answer a command's result. */
async function runExec(shell: SessionShell, job: Job, port: MessagePort, config: Config): Promise<ExecuteResult> {
  const req = job.payload as unknown as ExecPayload;
  const c = config.commands;
  const cancel = new AbortController();
  port.on('message', (m: ControlMessage) => {
    if (m.t === 'cancel') cancel.abort();
  });
  const logs = commandLogs(config, job.id, port);
  const held = { stdout: new OutputBuffer(c.maxOutputBytes), stderr: new OutputBuffer(c.maxOutputBytes) };
  try {
    const end = await shell.exec({
      command: req.command,
      timeoutMs: Math.min(req.timeout_s ?? c.defaultTimeoutS, c.maxTimeoutS) * 1000,
      signal: cancel.signal,
      write: (stream, chunk) => {
        held[stream].push(chunk);
        return logs[stream].write(chunk) ? undefined : logs[stream].drained();
      },
    });
    await logs.close();
    const result = await commandResult(
      {
        exitCode: end.exitCode,
        signal: null,
        stdout: held.stdout.result(),
        stderr: held.stderr.result(),
        timedOut: end.timedOut,
        cancelled: end.cancelled,
        durationMs: end.durationMs,
      },
      logs,
      config,
      job.id,
      req.max_output_chars,
    );
    return { ...result, session: { session_id: req.session_id, restarted: end.shellEnded } };
  } finally {
    await logs.close();
    port.close();
  }
}
