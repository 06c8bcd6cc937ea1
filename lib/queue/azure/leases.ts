/**
 * Project affinity and worker liveness on Blob leases. A worker holds a lease on `leases/<project>` while it
 * holds that project's working copy, and one on `nodes/<nodeId>` while it lives; it renews both every third of
 * `leaseS`. So at most one worker works on a project, and when a worker dies its leases expire and another takes
 * its projects (from their last saved state) and its queue. Lease ids derive from the node id ({@link leaseIdOf}),
 * so a worker restarted under the same nodeId holds its leases again at once.
 */
import type { BlobLeaseClient, ContainerClient } from '@azure/storage-blob';
import { type DeadlineSignal, deadlineSignals } from '../../azure-deadline.js';
import { BLOBS, leaseIdOf } from './names.js';

/**
 * Where a project stands for a worker that wants it: held here now; held by another worker (alive or not); or
 * free, but left to the live peer holding fewest projects when it holds fewer than this one (`yieldTo`), so new
 * projects spread over the workers.
 */
export type Claim = { mine: true } | { mine: false; owner: string; alive: boolean } | { mine: false; yieldTo: string };

/** What the leases report. */
export interface LeasesLog {
  warn(obj: object, msg: string): void;
}

/** How long an answer about who owns what may be reused. */
const OWNER_CACHE_MS = 2_000;

function status(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

/** The leases of one node. */
export class Leases {
  readonly #container: ContainerClient;
  readonly #nodeId: string;
  readonly #leaseId: string;
  readonly #leaseS: number;
  readonly #log: LeasesLog;
  readonly #onLost: (projectId: string) => void;
  readonly #held = new Map<string, BlobLeaseClient>();
  readonly #owners = new Map<string, { owner: string | null; at: number }>();
  readonly #alive = new Map<string, { alive: boolean; at: number }>();
  /** Free projects this worker left to a peer, until a lease shows the peer took them (or a lease passed). */
  readonly #yielded = new Map<string, { to: string; at: number }>();
  readonly #deadline: DeadlineSignal;
  #node: BlobLeaseClient | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** New claims are decided one at a time, each on fresh counts. */
  #claiming: Promise<unknown> = Promise.resolve();

  constructor(o: {
    container: ContainerClient;
    nodeId: string;
    leaseS: number;
    log: LeasesLog;
    onLost: (projectId: string) => void;
    /** The client-side deadline of each call (lib/azure-deadline.ts); the defaults when absent. */
    deadline?: DeadlineSignal;
  }) {
    this.#container = o.container;
    this.#deadline = o.deadline ?? deadlineSignals();
    this.#nodeId = o.nodeId;
    this.#leaseId = leaseIdOf(o.nodeId);
    this.#leaseS = o.leaseS;
    this.#log = o.log;
    this.#onLost = o.onLost;
  }

  /** Worker side: announces this node (its liveness lease, naming its queue) and starts renewing. */
  async register(queue: string): Promise<void> {
    const blob = this.#container.getBlockBlobClient(BLOBS.nodeLease(this.#nodeId));
    await this.#ensureBlob(BLOBS.nodeLease(this.#nodeId));
    this.#node = blob.getBlobLeaseClient(this.#leaseId);
    await this.#node.acquireLease(this.#leaseS, { abortSignal: this.#deadline() });
    await blob.setMetadata({ queue }, { conditions: { leaseId: this.#leaseId }, abortSignal: this.#deadline() });
    this.#timer = setInterval(() => void this.#renewAll(), (this.#leaseS * 1000) / 3);
    this.#timer.unref();
  }

  /** Projects this node holds. */
  held(): string[] {
    return [...this.#held.keys()];
  }

  /** True when this node holds the project. */
  holds(projectId: string): boolean {
    return this.#held.has(projectId);
  }

  /**
   * Worker side: takes the project's lease, or says who holds it and whether that worker lives. With `yielding`
   * (the default), a free project is left to a live peer holding fewer projects.
   */
  claim(projectId: string, opts: { yielding?: boolean } = {}): Promise<Claim> {
    if (this.#held.has(projectId)) return Promise.resolve({ mine: true });
    const next = this.#claiming.then(() => this.#claim(projectId, opts.yielding ?? true));
    this.#claiming = next.catch(() => {});
    return next;
  }

  async #claim(projectId: string, yielding: boolean): Promise<Claim> {
    if (this.#held.has(projectId)) return { mine: true };
    const name = BLOBS.projectLease(projectId);
    await this.#ensureBlob(name);
    const blob = this.#container.getBlockBlobClient(name);
    const lease = blob.getBlobLeaseClient(this.#leaseId);
    const peer = yielding ? await this.#peerHoldingFewer(projectId) : undefined;
    if (peer) return { mine: false, yieldTo: peer };
    try {
      await lease.acquireLease(this.#leaseS, { abortSignal: this.#deadline() });
    } catch (err) {
      if (status(err) !== 409) throw err;
      // Metadata naming this node is stale (the lease was taken since): the new holder has not named itself yet.
      const named = (await blob.getProperties({ abortSignal: this.#deadline() })).metadata?.owner;
      const owner = named && named !== this.#nodeId ? named : 'unknown';
      return { mine: false, owner, alive: owner !== 'unknown' && (await this.alive(owner)) };
    }
    await blob.setMetadata({ owner: this.#nodeId }, { conditions: { leaseId: this.#leaseId }, abortSignal: this.#deadline() });
    this.#held.set(projectId, lease);
    this.#owners.set(projectId, { owner: this.#nodeId, at: Date.now() });
    return { mine: true };
  }

  /** Gives a project up (its copy was written back and evicted), so any worker may take it. */
  async release(projectId: string): Promise<void> {
    const lease = this.#held.get(projectId);
    if (!lease) return;
    this.#held.delete(projectId);
    this.#owners.delete(projectId);
    await lease
      .releaseLease({ abortSignal: this.#deadline() })
      .catch((err: unknown) => this.#log.warn({ project_id: projectId, err: String(err) }, 'could not release project lease; it expires on its own'));
  }

  /** API side: the worker holding the project, or null (a short-lived cache spares a request per job). */
  async ownerOf(projectId: string): Promise<string | null> {
    if (this.#held.has(projectId)) return this.#nodeId;
    const cached = this.#owners.get(projectId);
    if (cached && Date.now() - cached.at < OWNER_CACHE_MS) return cached.owner;
    let owner: string | null = null;
    try {
      const p = await this.#container.getBlockBlobClient(BLOBS.projectLease(projectId)).getProperties({ abortSignal: this.#deadline() });
      if (p.leaseState === 'leased') owner = p.metadata?.owner ?? null;
    } catch (err) {
      if (status(err) !== 404) throw err;
    }
    if (this.#owners.size > 10_000) this.#owners.clear();
    this.#owners.set(projectId, { owner, at: Date.now() });
    return owner;
  }

  /** Whether a worker still renews its liveness lease. */
  async alive(nodeId: string): Promise<boolean> {
    if (nodeId === this.#nodeId) return true;
    const cached = this.#alive.get(nodeId);
    if (cached && Date.now() - cached.at < OWNER_CACHE_MS) return cached.alive;
    let alive = false;
    try {
      alive = (await this.#container.getBlockBlobClient(BLOBS.nodeLease(nodeId)).getProperties({ abortSignal: this.#deadline() })).leaseState === 'leased';
    } catch (err) {
      if (status(err) !== 404) throw err;
    }
    this.#alive.set(nodeId, { alive, at: Date.now() });
    return alive;
  }

  /**
   * The live peer holding fewest projects, when it holds fewer than this worker: one request lists the leases, one
   * the workers. Paid once per project a worker takes, not per job. Projects this worker left to a peer and that
   * nobody has taken yet count as the peer's, so a burst of new projects is dealt out instead of all left to one.
   */
  async #peerHoldingFewer(projectId: string): Promise<string | undefined> {
    const peers = new Map<string, number>();
    for await (const b of this.#container.listBlobsFlat({ prefix: BLOBS.nodesPrefix, abortSignal: this.#deadline() })) {
      const nodeId = b.name.slice(BLOBS.nodesPrefix.length);
      if (nodeId !== this.#nodeId && b.properties.leaseState === 'leased') peers.set(nodeId, 0);
    }
    if (peers.size === 0) return undefined;
    const leased = new Set<string>();
    for await (const b of this.#container.listBlobsFlat({ prefix: BLOBS.leasesPrefix, includeMetadata: true, abortSignal: this.#deadline() })) {
      if (b.properties.leaseState !== 'leased') continue;
      leased.add(b.name);
      const owner = b.metadata?.owner;
      const held = owner ? peers.get(owner) : undefined;
      if (owner && held !== undefined) peers.set(owner, held + 1);
    }
    const now = Date.now();
    for (const [id, y] of this.#yielded) {
      if (leased.has(BLOBS.projectLease(id)) || now - y.at > this.#leaseS * 1000) this.#yielded.delete(id);
      else if (peers.has(y.to)) peers.set(y.to, peers.get(y.to)! + 1);
    }
    let fewest: [string, number] | undefined;
    for (const [id, n] of peers) if (!fewest || n < fewest[1]) fewest = [id, n];
    if (!fewest || fewest[1] >= this.#held.size) return undefined;
    this.#yielded.set(projectId, { to: fewest[0], at: now });
    return fewest[0];
  }

  /** Workers that stopped renewing their liveness lease, with their queues. */
  async deadNodes(): Promise<{ nodeId: string; queue: string }[]> {
    const dead: { nodeId: string; queue: string }[] = [];
    for await (const b of this.#container.listBlobsFlat({ prefix: BLOBS.nodesPrefix, includeMetadata: true, abortSignal: this.#deadline() })) {
      const nodeId = b.name.slice(BLOBS.nodesPrefix.length);
      if (nodeId === this.#nodeId || b.properties.leaseState === 'leased' || !b.metadata?.queue) continue;
      dead.push({ nodeId, queue: b.metadata.queue });
    }
    return dead;
  }

  /** Takes a dead worker's liveness lease, so one worker alone moves its queue; false when another got there first. */
  async adopt(nodeId: string): Promise<boolean> {
    try {
      await this.#container.getBlockBlobClient(BLOBS.nodeLease(nodeId)).getBlobLeaseClient(this.#leaseId).acquireLease(60, { abortSignal: this.#deadline() });
      return true;
    } catch (err) {
      if (status(err) === 409 || status(err) === 404) return false;
      throw err;
    }
  }

  /** Forgets an adopted dead worker once its queue is empty. */
  async bury(nodeId: string): Promise<void> {
    await this.#container.getBlockBlobClient(BLOBS.nodeLease(nodeId)).deleteIfExists({ conditions: { leaseId: this.#leaseId }, abortSignal: this.#deadline() });
  }

  /** Stops renewing and releases every lease (after the working copies were written back). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await Promise.all(this.held().map((id) => this.release(id)));
    if (this.#node) {
      // The liveness blob goes too: nothing is left in this node's queue to rescue after a graceful stop.
      await this.#container
        .getBlockBlobClient(BLOBS.nodeLease(this.#nodeId))
        .deleteIfExists({ conditions: { leaseId: this.#leaseId }, abortSignal: this.#deadline() })
        .catch(() => this.#node?.releaseLease({ abortSignal: this.#deadline() }).catch(() => {}));
    }
  }

  async #ensureBlob(name: string): Promise<void> {
    try {
      await this.#container.getBlockBlobClient(name).upload('', 0, { conditions: { ifNoneMatch: '*' }, abortSignal: this.#deadline() });
    } catch (err) {
      // 409: it exists and is leased; 412: it exists.
      if (status(err) !== 409 && status(err) !== 412) throw err;
    }
  }

  async #renewAll(): Promise<void> {
    await this.#node
      ?.renewLease({ abortSignal: this.#deadline() })
      .catch((err: unknown) => this.#log.warn({ err: String(err) }, "could not renew this worker's liveness lease"));
    await Promise.all(
      [...this.#held].map(async ([id, lease]) => {
        try {
          await lease.renewLease({ abortSignal: this.#deadline() });
        } catch (err) {
          // 409/412: another worker holds it now (ours expired unrenewed): this copy must not be worked on.
          if (status(err) === 409 || status(err) === 412) {
            this.#held.delete(id);
            this.#onLost(id);
          } else {
            this.#log.warn({ project_id: id, err: String(err) }, 'could not renew project lease; retrying');
          }
        }
      }),
    );
  }
}
