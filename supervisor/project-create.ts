/**
 * The archive of a new, empty project: a tar.gz with nothing in it, or only a fresh git repository. Creating a
 * project is then an upload like any other (ProjectCache.put: stored only if the id is free, extracted, cached),
 * so there is no second way for a project to come into being.
 *
 * `git_init` writes the files `git init` writes (HEAD on branch main, the config, the empty object and ref
 * folders) rather than running git: that works on every role that holds working copies (a worker cannot queue
 * a command and wait for it), needs no git on the host or in the sandbox, runs nothing, and gives a repository
 * git accepts as its own (the tests check it with git itself).
 */
import { randomUUID } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { TarGzWriter } from '../lib/archive/tar-writer.js';

/** The folders and files of a repository fresh from `git init -b main`, without its sample hooks. */
const GIT_DIRS = ['.git', '.git/info', '.git/objects', '.git/objects/info', '.git/objects/pack', '.git/refs', '.git/refs/heads', '.git/refs/tags'];
const GIT_FILES: Record<string, string> = {
  '.git/HEAD': 'ref: refs/heads/main\n',
  '.git/config': '[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n',
  '.git/description': "Unnamed repository; edit this file 'description' to name the repository.\n",
  '.git/info/exclude': '# git ls-files --others --exclude-from=.git/info/exclude\n',
};

/** Writes the archive of an empty project (with a git repository when `gitInit`) into `dir`; returns its path. */
export async function emptyProjectArchive(dir: string, gitInit: boolean): Promise<string> {
  const file = join(dir, `create-${randomUUID()}.tar.gz`);
  const fd = openSync(file, 'wx', 0o600);
  try {
    const tar = new TarGzWriter(fd);
    const now = Date.now();
    if (gitInit) {
      for (const name of GIT_DIRS) tar.directory({ name, mode: 0o40755, mtimeMs: now });
      for (const [name, text] of Object.entries(GIT_FILES)) {
        const bytes = Buffer.from(text);
        const sink = tar.file({ name, mode: 0o100644, mtimeMs: now }, bytes.length);
        sink.write(bytes);
        sink.end();
      }
    }
    tar.finish();
  } catch (err) {
    closeSync(fd);
    await rm(file, { force: true });
    throw err;
  }
  closeSync(fd);
  return file;
}
