/**
 * A project folder for calling handlers directly: a real temp dir (one level down, so a .gitignore can be
 * planted above the project and shown not to apply), the default config, and a handler context.
 */
import { mkdir, mkdtemp, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../../config/load.js';
import type { Config } from '../../config/schema.js';
import { ToolhostError } from '../../lib/errors.js';
import type { HandlerContext } from '../../lib/tool.js';

/** A temp project for handler tests. */
export class HandlerProject {
  private constructor(
    /** The temp folder that holds the project. */
    readonly outer: string,
    /** The project root (absolute, real). */
    readonly root: string,
    readonly config: Config,
  ) {}

  /** Makes `<tmp>/<prefix>XXXX/project`. */
  static async create(prefix: string): Promise<HandlerProject> {
    const outer = await realpath(await mkdtemp(join(tmpdir(), prefix)));
    const root = join(outer, 'project');
    await mkdir(root);
    return new HandlerProject(outer, root, loadConfig());
  }

  /** Writes files (a path ending in "/" makes an empty folder) under `base` (default: the root). */
  async files(tree: Record<string, string>, base = this.root): Promise<void> {
    for (const [rel, content] of Object.entries(tree)) {
      if (rel.endsWith('/')) {
        await mkdir(join(base, rel), { recursive: true });
        continue;
      }
      await mkdir(dirname(join(base, rel)), { recursive: true });
      await writeFile(join(base, rel), content);
    }
  }

  /** A handler context for this project. */
  ctx(overrides: Partial<HandlerContext> = {}): HandlerContext {
    return { root: this.root, config: this.config, signal: new AbortController().signal, jobId: 'test-job', projectId: 'p', ...overrides };
  }

  /** Removes the temp folder. */
  async remove(): Promise<void> {
    await rm(this.outer, { recursive: true, force: true });
  }
}

/** The ToolhostError a promise rejects with; fails the test if it resolves. */
export async function failure(p: Promise<unknown>): Promise<ToolhostError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(ToolhostError);
    return err as ToolhostError;
  }
  expect.fail('expected a ToolhostError');
}
