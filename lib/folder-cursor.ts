/**
 * Walking down from an open folder without following a symlink swapped in meanwhile: each subfolder is opened
 * through the fd of the one above it (see lib/safe-fs.ts for why that holds against a command renaming things).
 */
import { constants, openSync } from 'node:fs';
import { closeQuietly, fdPath, O_PATH } from './safe-fs.js';

const { O_DIRECTORY, O_NOFOLLOW } = constants;

/**
 * Opens the subfolder `name` of the open folder `parentFd` through the parent's fd, O_PATH | O_DIRECTORY |
 * O_NOFOLLOW: a name swapped for a symlink (ELOOP or ENOTDIR) or a file (ENOTDIR) is never entered, and a swap of
 * a folder above cannot redirect it. The fd can be listed (`readdirSync(fdPath(fd))`) and fstat'ed.
 *
 * @throws the system error: ENOENT when the name is gone, ENOTDIR or ELOOP when it is no longer a real folder.
 */
export function openSubfolder(parentFd: number, name: string): number {
  return openSync(fdPath(parentFd, name), O_PATH | O_DIRECTORY | O_NOFOLLOW);
}

/**
 * Opens subfolders below one open folder by their relative names, each step through the step above with
 * O_DIRECTORY | O_NOFOLLOW, so a subfolder swapped for a symlink is never entered. Keeps the steps of the previous
 * call open and reuses the shared prefix: a breadth-first walk asks for siblings one after another, so most calls
 * open one folder. At most one fd per level is held.
 */
export class FolderCursor {
  readonly #top: number;
  readonly #stack: { name: string; fd: number }[] = [];

  /** @param topFd An open folder (the cursor does not close it). */
  constructor(topFd: number) {
    this.#top = topFd;
  }

  /** An fd of the folder at `parts` below the top; null when it is gone or is no longer a real folder. */
  open(parts: readonly string[]): number | null {
    let common = 0;
    while (common < this.#stack.length && common < parts.length && this.#stack[common]!.name === parts[common]) common++;
    while (this.#stack.length > common) closeQuietly(this.#stack.pop()!.fd);
    for (let i = common; i < parts.length; i++) {
      const parent = i === 0 ? this.#top : this.#stack[i - 1]!.fd;
      let fd: number;
      try {
        fd = openSubfolder(parent, parts[i]!);
      } catch {
        return null; // vanished, or swapped for a symlink or a file: not entered
      }
      this.#stack.push({ name: parts[i]!, fd });
    }
    return parts.length === 0 ? this.#top : this.#stack[parts.length - 1]!.fd;
  }

  /** Closes every fd the cursor opened. */
  close(): void {
    while (this.#stack.length > 0) closeQuietly(this.#stack.pop()!.fd);
  }
}
