/**
 * Every child process the bench starts is registered here, so a scenario that fails or times out cannot leave a
 * supervisor or a baseline server running after the bench exits.
 */
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();

/** Registers a child until it exits. */
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Waits for a child to exit; resolves with its exit code (null when a signal ended it). */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone. */
export async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve();
    }, graceMs);
  });
  const code = await Promise.race([exited(child), killed.then(() => exited(child))]);
  clearTimeout(timer);
  return code;
}

/** Stops every child still running (the runner calls it after each scenario). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((c) => stopChild(c, 5_000)));
}
