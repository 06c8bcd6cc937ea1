/**
 * Types shared by the parts of the Azure queue (and by its callers): its settings, what it logs to, and the
 * worker-side callbacks. A leaf module: it imports nothing, so every part may depend on it.
 */

/** Settings of the Azure queue (`AzureQueue`). */
export interface AzureQueueOptions {
  connectionString: string;
  prefix: string;
  nodeId: string;
  /** Runs the API half (enqueue, reply queue, calls to workers). */
  api: boolean;
  /** Runs the worker half (receive, complete, leases, answers to calls, rescue of dead workers' queues). */
  worker: boolean;
  maxOutstanding: number;
  maxDequeueCount: number;
  visibilityS: number;
  leaseS: number;
  pollMinMs: number;
  pollMaxMs: number;
  /** Client-side deadline of every call: base seconds (lib/azure-deadline.ts; 10 when absent). */
  deadlineBaseS?: number;
  /** Slowest transfer tolerated, bytes/s: a call moving N bytes may take N / rate seconds more (1 MiB/s when absent). */
  minBytesPerS?: number;
  log: QueueLog;
}

/** What the queue reports. */
export interface QueueLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Worker-side callbacks: calls from API processes, and a project lease lost to another worker. */
export interface WorkerHooks {
  call(op: string, args: unknown): Promise<unknown>;
  leaseLost(projectId: string): void;
}
