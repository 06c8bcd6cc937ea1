/**
 * The end of one exec on a persistent shell's output streams. After each command the shell writes
 * `\0<nonce>\0` to stderr and `\0<nonce>\0<exit status>\n` to stdout, where the nonce is 32 random hex digits the
 * host sends only once the command has returned (session-shell.ts): no output of the command, no file it prints,
 * can contain it. The scanner passes every byte before the marker through and holds back only a tail that could
 * be the start of one (it begins with a NUL byte, which text output rarely has).
 */

/** What one chunk of a stream held. */
export interface MarkerScan {
  /** The command's own bytes in the chunk (and any held back before it that turned out not to be a marker). */
  out: Buffer;
  /** True once the whole marker (and the exit status, on stdout) has been seen. */
  done: boolean;
  /** The exit status the marker carried (stdout only), once done. */
  status?: number;
}

const EMPTY = Buffer.alloc(0);

/** Finds the marker of one exec in one stream. */
export class MarkerScanner {
  readonly #needle: Buffer;
  readonly #withStatus: boolean;
  #held: Buffer = EMPTY;
  /** The marker was seen; on stdout, the digits of the status up to its newline are collected here. */
  #seen = false;
  #status = '';
  #done = false;

  /** `withStatus`: the marker is followed by the exit status and a newline (stdout). */
  constructor(nonce: string, withStatus: boolean) {
    this.#needle = Buffer.from(`\0${nonce}\0`, 'latin1');
    this.#withStatus = withStatus;
  }

  /** True once the marker was found. */
  get done(): boolean {
    return this.#done;
  }

  /** Feeds the next chunk of the stream. Bytes after a complete marker are not the command's: they are dropped. */
  push(chunk: Buffer): MarkerScan {
    if (this.#done) return { out: EMPTY, done: true, status: this.#statusValue() };
    if (this.#seen) return this.#collectStatus(chunk);
    const data = this.#held.length > 0 ? Buffer.concat([this.#held, chunk]) : chunk;
    const at = data.indexOf(this.#needle);
    if (at >= 0) {
      this.#held = EMPTY;
      this.#seen = true;
      const out = data.subarray(0, at);
      if (!this.#withStatus) {
        this.#done = true;
        return { out, done: true };
      }
      const rest = this.#collectStatus(data.subarray(at + this.#needle.length));
      return { ...rest, out };
    }
    const keep = this.#partialAt(data);
    this.#held = keep < data.length ? Buffer.from(data.subarray(keep)) : EMPTY;
    return { out: data.subarray(0, keep), done: false };
  }

  /** Where a tail of `data` that is a prefix of the marker starts (data.length when none is). */
  #partialAt(data: Buffer): number {
    const n = this.#needle;
    for (let p = Math.max(0, data.length - n.length + 1); p < data.length; p++) {
      if (data[p] !== 0) continue;
      if (n.subarray(0, data.length - p).equals(data.subarray(p))) return p;
    }
    return data.length;
  }

  #collectStatus(chunk: Buffer): MarkerScan {
    const nl = chunk.indexOf(0x0a);
    this.#status += chunk.subarray(0, nl < 0 ? chunk.length : nl).toString('latin1');
    if (nl < 0 && this.#status.length < 16) return { out: EMPTY, done: false };
    this.#done = true;
    return { out: EMPTY, done: true, status: this.#statusValue() };
  }

  #statusValue(): number {
    const n = Number.parseInt(this.#status, 10);
    return Number.isInteger(n) && n >= 0 && n <= 255 ? n : 255;
  }
}
