/**
 * Names of everything toolhost keeps in a storage account for its queue: queues, the coordination container and
 * the blobs in it. Queue names allow 3-63 lowercase letters, digits and single hyphens, so node ids are slugged
 * (with a short hash when slugging changed them, so two ids never share a queue).
 */
import { createHash } from 'node:crypto';

/** The queues and blobs of one deployment (one `queue.azure.prefix`). */
export class QueueNames {
  constructor(readonly prefix: string) {}

  /** The shared queue: jobs of projects no worker holds. */
  get jobs(): string {
    return `${this.prefix}-jobs`;
  }

  /** Where jobs that crashed their thread `queue.maxDequeueCount` times end. */
  get poison(): string {
    return `${this.jobs}-poison`;
  }

  /** Claim checks, project and worker leases, command job records. */
  get container(): string {
    return `${this.prefix}-state`;
  }

  /** A worker's own queue: jobs of the projects it holds, and calls to it (job status, stdin, cancel). */
  node(nodeId: string): string {
    return `${this.prefix}-node-${slug(nodeId, 63 - this.prefix.length - 6)}`;
  }

  /** An API process's reply queue. */
  replies(nodeId: string): string {
    return `${this.prefix}-replies-${slug(nodeId, 63 - this.prefix.length - 9)}`;
  }

  /** True when `name` is a valid queue name and the reply queue of some API process of this deployment. */
  isReplies(name: string): boolean {
    return QUEUE_NAME.test(name) && name.startsWith(`${this.prefix}-replies-`) && name.length > this.prefix.length + 9;
  }

  /** True when `name` is a valid queue name and the own queue of some worker of this deployment. */
  isNode(name: string): boolean {
    return QUEUE_NAME.test(name) && name.startsWith(`${this.prefix}-node-`) && name.length > this.prefix.length + 6;
  }
}

/** What Azure accepts as a queue name: 3-63 lowercase letters, digits and single hyphens, no hyphen at either end. */
export const QUEUE_NAME = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/;

/** Blob names inside the coordination container. */
export const BLOBS = {
  claim: (id: string) => `claims/${id}`,
  /** True for the name of a claim-check blob (`claims/<uuid>`), so a message can name no other blob. */
  isClaim: (name: string) => /^claims\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(name),
  projectLease: (projectId: string) => `leases/${projectId}`,
  leasesPrefix: 'leases/',
  nodeLease: (nodeId: string) => `nodes/${nodeId}`,
  nodesPrefix: 'nodes/',
  job: (jobId: string) => `jobs/${jobId}.json`,
  jobsPrefix: 'jobs/',
} as const;

/** A lowercase, hyphen-separated form of `id` at most `max` characters long, unique per id. */
export function slug(id: string, max: number): string {
  const plain = id
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (plain === id && plain.length <= max && plain.length > 0) return plain;
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 8);
  return `${plain.slice(0, max - 9).replace(/-+$/, '')}-${hash}`.replace(/^-/, '');
}

/**
 * The lease id a node proposes for every lease it takes: derived from its node id, so a worker restarted under
 * the same nodeId holds its leases again at once, and two nodes never share one.
 */
export function leaseIdOf(nodeId: string): string {
  const h = createHash('sha256').update(`toolhost-lease:${nodeId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
