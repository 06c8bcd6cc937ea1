/**
 * The bearer token of the HTTP front, resolved once at start: with auth "token" it is the configured `token`
 * (or TOOLHOST_TOKEN), else the one in `<dataDir>/token`, generated there (mode 0600) on the first start. A reload
 * keeps it: the front holds the resolved token, not the configuration's `token`, which stays null.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, link, mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';
import { errnoCode, ToolhostError } from '../lib/errors.js';
import type { Logger } from './logger.js';

/** The name of the token file in the data directory. */
export const TOKEN_FILE = 'token';

/** What {@link resolveToken} found. */
export interface ResolvedToken {
  /** The token every request but a bare /health must carry; null with auth "none". */
  token: string | null;
  /** "config": `token` or TOOLHOST_TOKEN; "file": read from the token file; "generated": written there now. */
  source: 'none' | 'config' | 'file' | 'generated';
  /** The token file when the token lives in one, for the start banner (which never shows the token). */
  file: string | null;
}

/** Visible ASCII only, since it travels in a header; at least 16 characters, as the config schema asks of `token`. */
const USABLE = /^[\x21-\x7e]{16,}$/;

/**
 * Resolves the token the HTTP front requires. Two supervisors starting on one empty data directory agree on one
 * token: the file appears complete or not at all (written aside, then hard-linked into place, which fails if it
 * exists). Throws `invalid_config` when the file exists but holds no usable token or cannot be created.
 */
export async function resolveToken(config: Pick<Config, 'auth' | 'token' | 'dataDir'>, log?: Logger): Promise<ResolvedToken> {
  if (config.auth === 'none') return { token: null, source: 'none', file: null };
  if (config.token !== null) return { token: config.token, source: 'config', file: null };
  const file = join(config.dataDir, TOKEN_FILE);
  const existing = await readTokenFile(file, log);
  if (existing !== undefined) return { token: existing, source: 'file', file };
  const token = randomBytes(32).toString('base64url');
  const aside = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(config.dataDir, { recursive: true });
    const fh = await open(aside, 'wx', 0o600);
    try {
      await fh.writeFile(`${token}\n`);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await link(aside, file);
    return { token, source: 'generated', file };
  } catch (err) {
    // Another start linked its token first: that one is the token.
    if (errnoCode(err) === 'EEXIST') {
      const theirs = await readTokenFile(file, log);
      if (theirs !== undefined) return { token: theirs, source: 'file', file };
    }
    throw new ToolhostError(
      'invalid_config',
      `cannot create the token file ${file}: ${(err as Error).message}; make dataDir writable, or set token (or TOOLHOST_TOKEN)`,
    );
  } finally {
    await unlink(aside).catch(() => {});
  }
}

/** The token in `file`; undefined when there is no such file. Never follows a symlink. */
async function readTokenFile(file: string, log?: Logger): Promise<string | undefined> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw new ToolhostError(
      'invalid_config',
      `cannot read the token file ${file} (${errnoCode(err) ?? (err as Error).message}); it must be a regular file, not a symlink: fix or delete it (a new token is then generated), or set token (or TOOLHOST_TOKEN)`,
    );
  }
  try {
    const st = await fh.stat();
    if (!st.isFile())
      throw new ToolhostError(
        'invalid_config',
        `the token file ${file} is not a regular file; delete it (a new token is then generated), or set token (or TOOLHOST_TOKEN)`,
      );
    if ((st.mode & 0o077) !== 0) {
      // Readable by others: whoever could read it may hold the token. Close the hole; the operator decides whether to rotate.
      await fh.chmod(0o600).catch(() => {});
      log?.warn(
        { file, mode: (st.mode & 0o777).toString(8) },
        'the token file was readable by other users; its mode is now 0600. Delete it and restart to rotate the token if they may have read it',
      );
    }
    const token = (await fh.readFile('utf8')).trim();
    if (!USABLE.test(token)) {
      throw new ToolhostError(
        'invalid_config',
        `the token file ${file} holds no usable token (it needs at least 16 visible ASCII characters, no spaces); delete it to have a new one generated, or write one there`,
      );
    }
    return token;
  } finally {
    await fh.close();
  }
}
