/**
 * The modes of a project's working copy and the one place they change. The tables below are the whole machine:
 * {@link MODES} names every mode, {@link TRANSITIONS} lists every allowed change with when it happens, and
 * {@link EVENTS} names the usual changes. {@link CopyState.setMode} refuses anything else with an internal error
 * naming both modes: an illegal change is a bug in the cache, never something to let pass.
 *
 * Counts and records that are not modes stay data of the cache entry (project-entry.ts): the mutating jobs
 * running, the generation (bumped by each change that starts), the pending index write that makes "dirty"
 * durable, the latest failed write-back and the latest conflict copy.
 *
 * Withdrawal (an eviction or a replacement holding the project's lock: new jobs wait for the lock instead of
 * using the copy) is part of the mode, because a withdrawn copy still has to know whether it holds unsaved work:
 * `withdrawn-clean`, `withdrawn-dirty` and `withdrawn-saving` mirror `clean`, `dirty` and `saving`.
 */
import { ToolhostError } from '../lib/errors.js';

/** Every mode of a working copy, with what it means. */
export const MODES = {
  absent: 'no working copy: never extracted, or evicted, or replaced by a newer one',
  materializing: 'being downloaded and extracted (or an upload extracted) into a staging folder',
  clean: 'the same as the stored archive it came from or was last saved as',
  dirty: 'may hold changes the store does not have; marked so in the index before any change runs',
  saving: 'being packed and uploaded; jobs still use it, and it stays dirty until the upload is in',
  'withdrawn-clean': "clean, and being evicted or replaced: new jobs wait for the project's lock",
  'withdrawn-dirty': "dirty, and being evicted or replaced: new jobs wait for the project's lock",
  'withdrawn-saving': "being saved before its eviction: new jobs wait for the project's lock",
} as const;

/** A mode of a working copy (see {@link MODES}). */
export type Mode = keyof typeof MODES;

/**
 * Every allowed change of mode: from, to, when. No row goes from a mode to itself: an event that keeps the mode
 * (a change starting on a copy already dirty) changes nothing, and an event asked of a mode it does not apply to
 * asks for a change to the same mode, which is refused like any other change missing here.
 */
// biome-ignore format: a table is read down its columns
export const TRANSITIONS = [
  // from              to                  when
  ['absent',           'materializing',    'a job or an upload needs the project: extraction starts'],
  ['absent',           'clean',            'found in the cache at start-up, recorded clean in the index'],
  ['absent',           'dirty',            'found at start-up, recorded dirty or not at all (a crash before the index write)'],
  ['materializing',    'clean',            'extracted, renamed into place and recorded in the index'],
  ['materializing',    'absent',           'the download, extraction or upload failed'],
  ['clean',            'dirty',            'a mutating job starts'],
  ['dirty',            'saving',           'a save starts (jobs may still start changes: the save then ends dirty)'],
  ['dirty',            'clean',            'the one change started since the copy was clean was refused before it wrote anything'],
  ['saving',           'clean',            'stored (or kept as a conflict copy) and no change started meanwhile'],
  ['saving',           'dirty',            'the save failed, or a change started meanwhile'],
  ['clean',            'withdrawn-clean',  "an eviction or a replacement takes the project's lock"],
  ['dirty',            'withdrawn-dirty',  "an eviction or a replacement takes the project's lock"],
  ['withdrawn-clean',  'clean',            'the eviction or replacement was called off (busy, refused, failed)'],
  ['withdrawn-dirty',  'dirty',            'the eviction or replacement was called off (busy, refused, failed write-back)'],
  ['withdrawn-clean',  'withdrawn-dirty',  'a job admitted earlier starts a change (the withdrawal is then called off: busy)'],
  ['withdrawn-dirty',  'withdrawn-saving', 'an eviction saves the copy first'],
  ['withdrawn-saving', 'withdrawn-clean',  'stored (or kept as a conflict copy) and no change started meanwhile'],
  ['withdrawn-saving', 'withdrawn-dirty',  'the save failed, or a change started meanwhile'],
  ['withdrawn-clean',  'absent',           'evicted, or replaced by a newly extracted copy'],
  ['withdrawn-dirty',  'absent',           'evicted after a save that left a conflict copy while a change started, or deleted by force'],
] as const satisfies readonly (readonly [Mode, Mode, string])[];

const ALLOWED: ReadonlyMap<Mode, ReadonlySet<Mode>> = new Map(
  (Object.keys(MODES) as Mode[]).map((from) => [from, new Set(TRANSITIONS.filter((t) => t[0] === from).map((t) => t[1]))]),
);

/** Whether the machine allows going from `from` to `to` (a row of {@link TRANSITIONS}). */
export function allowed(from: Mode, to: Mode): boolean {
  return ALLOWED.get(from)?.has(to) ?? false;
}

/**
 * What the named events of {@link CopyState} mean in each mode they apply to. They only choose among the rows
 * above (a withdrawn copy's counterpart of a plain one); the table still decides.
 */
export const EVENTS = {
  /** A mutating job starts on a copy not yet dirty. */
  change: { clean: 'dirty', 'withdrawn-clean': 'withdrawn-dirty' },
  /** The only change started since the copy was clean was refused before writing (a failed edit). */
  unchanged: { dirty: 'clean' },
  /** An eviction or a replacement takes the copy. */
  withdraw: { clean: 'withdrawn-clean', dirty: 'withdrawn-dirty' },
  /** The eviction or replacement was called off. */
  giveBack: { 'withdrawn-clean': 'clean', 'withdrawn-dirty': 'dirty' },
  /** A save starts packing the copy. */
  saveStarted: { dirty: 'saving', 'withdrawn-dirty': 'withdrawn-saving' },
  /** A save ended with the copy unchanged since packing. */
  savedClean: { saving: 'clean', 'withdrawn-saving': 'withdrawn-clean' },
  /** A save failed, or ended with a change started since packing. */
  savedDirty: { saving: 'dirty', 'withdrawn-saving': 'withdrawn-dirty' },
} as const satisfies Record<string, Partial<Record<Mode, Mode>>>;

/** A named event of a working copy (see {@link EVENTS}). */
export type CopyEvent = keyof typeof EVENTS;

/**
 * The mode of one working copy. Every change goes through {@link CopyState.setMode}, which checks it against
 * {@link TRANSITIONS}; {@link CopyState.on} names the usual changes.
 */
export class CopyState {
  /** The project whose copy this is. */
  readonly id: string;
  #mode: Mode = 'absent';

  /** The state of a copy of project `id`: `absent` until something brings it in. */
  constructor(id: string) {
    this.id = id;
  }

  /** The current mode. */
  get mode(): Mode {
    return this.#mode;
  }

  /** The copy may hold changes the store does not have (what the index records as dirty). */
  get dirty(): boolean {
    return this.#mode === 'dirty' || this.#mode === 'saving' || this.#mode === 'withdrawn-dirty' || this.#mode === 'withdrawn-saving';
  }

  /** An eviction or a replacement holds the project: new jobs wait for its lock instead of using the copy. */
  get withdrawn(): boolean {
    return this.#mode === 'withdrawn-clean' || this.#mode === 'withdrawn-dirty' || this.#mode === 'withdrawn-saving';
  }

  /**
   * The one place the mode changes. Throws `internal`, naming both modes, for a change {@link TRANSITIONS} does
   * not list; `event` only names what asked for it in that message.
   */
  setMode(next: Mode, event?: CopyEvent): void {
    if (!allowed(this.#mode, next)) {
      const asked = event === undefined ? '' : ` (event ${event})`;
      throw new ToolhostError('internal', `working copy of project "${this.id}" cannot go from ${this.#mode} to ${next}${asked}: a bug in the project cache`, {
        project_id: this.id,
        from: this.#mode,
        to: next,
      });
    }
    this.#mode = next;
  }

  /** Applies a named event: the change {@link EVENTS} gives it in the current mode, refused in any other mode. */
  on(event: CopyEvent): void {
    const targets: Partial<Record<Mode, Mode>> = EVENTS[event];
    this.setMode(targets[this.#mode] ?? this.#mode, event);
  }
}
