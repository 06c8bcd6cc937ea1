/**
 * What the checkpoints scenario reads beside the HTTP API: a layered project's manifest as the store holds it
 * (`<id>.layers.json`, in the local store's folder or as a blob), and a process's CPU time from /proc.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchContainer } from './azurite.js';

/** The parts of a stored manifest the bench looks at (lib/layers/format.ts has the whole shape). */
export interface StoredManifest {
  layers: { digest: string; bytes: number }[];
  /** Indexes into `layers`, base first. */
  head: number[];
  checkpoints: unknown[];
}

/** Reads a project's manifest from wherever its supervisor's store keeps it. */
export type ManifestReader = (id: string) => Promise<StoredManifest>;

/** Manifests of the local store under `dataDir` (`<dataDir>/store/<id>.layers.json`). */
export function localManifests(dataDir: string): ManifestReader {
  return async (id) => parse(id, await readFile(join(dataDir, 'store', `${id}.layers.json`), 'utf8'));
}

/** Manifests of a container on Azurite (the store's default prefix, none). */
export function azureManifests(c: BenchContainer): ManifestReader {
  return async (id) => parse(id, (await c.client.getBlobClient(`${id}.layers.json`).downloadToBuffer()).toString('utf8'));
}

function parse(id: string, text: string): StoredManifest {
  const m = JSON.parse(text) as Partial<StoredManifest>;
  if (!Array.isArray(m.layers) || !Array.isArray(m.head)) throw new Error(`the manifest of ${id} has no layers or head: ${text.slice(0, 300)}`);
  return m as StoredManifest;
}

/** Bytes of the layers of a manifest's head (what a cold start downloads). */
export function headBytes(m: StoredManifest): number {
  return m.head.reduce((n, i) => n + m.layers[i]!.bytes, 0);
}

/** CPU seconds (user + system, all threads) a process has used, from /proc/<pid>/stat (clock ticks of 10 ms). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The fields after the command name (which may hold spaces) start at field 3; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
