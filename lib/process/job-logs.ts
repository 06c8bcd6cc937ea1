/**
 * Where a command's spooled output lives. Reading it back by byte offset within an answer's budget is
 * command-output.ts's.
 */
import { join } from 'node:path';

/** The folder of all job logs and their records under a data dir (supervisor/command-records.ts keeps it tidy). */
export function jobLogsDir(dataDir: string): string {
  return join(dataDir, 'jobs');
}

/** The two log files of one job. */
export function jobLogPaths(dataDir: string, jobId: string): { stdout: string; stderr: string } {
  const dir = jobLogsDir(dataDir);
  return { stdout: join(dir, `${jobId}.stdout`), stderr: join(dir, `${jobId}.stderr`) };
}
