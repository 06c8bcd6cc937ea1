import { expect } from 'chai';
import { ToolhostError } from '../lib/errors.js';
import { allowed, type CopyEvent, CopyState, EVENTS, MODES, type Mode, TRANSITIONS } from '../supervisor/working-copy.js';

const modes = Object.keys(MODES) as Mode[];
const events = Object.keys(EVENTS) as CopyEvent[];

/** The shortest way from `absent` to every mode, following the table (so a new row or mode is walked too). */
function pathsFromAbsent(): Map<Mode, Mode[]> {
  const paths = new Map<Mode, Mode[]>([['absent', []]]);
  const queue: Mode[] = ['absent'];
  while (queue.length > 0) {
    const from = queue.shift()!;
    for (const [f, to] of TRANSITIONS) {
      if (f !== from || paths.has(to)) continue;
      paths.set(to, [...paths.get(from)!, to]);
      queue.push(to);
    }
  }
  return paths;
}

/** A copy brought into `mode` through allowed transitions only. */
function copyIn(mode: Mode): CopyState {
  const state = new CopyState('p1');
  for (const step of pathsFromAbsent().get(mode)!) state.setMode(step);
  expect(state.mode).to.equal(mode);
  return state;
}

/** The internal error an illegal change throws, checked to name both modes; the mode is left as it was. */
function refused(state: CopyState, change: () => void, to: Mode): ToolhostError {
  const before = state.mode;
  let caught: unknown;
  try {
    change();
  } catch (err) {
    caught = err;
  }
  expect(caught, `${before} -> ${to} should be refused`).to.be.instanceOf(ToolhostError);
  const error = caught as ToolhostError;
  expect(error.code).to.equal('internal');
  expect(error.message).to.include(`from ${before} to ${to}`).and.include('"p1"');
  expect(error.details).to.deep.equal({ project_id: 'p1', from: before, to });
  expect(state.mode, 'a refused change leaves the mode alone').to.equal(before);
  return error;
}

function walk(state: CopyState, steps: (CopyEvent | Mode)[]): Mode[] {
  const seen: Mode[] = [state.mode];
  for (const step of steps) {
    if (step in EVENTS) state.on(step as CopyEvent);
    else state.setMode(step as Mode);
    seen.push(state.mode);
  }
  return seen;
}

describe('working copy: its modes and transitions', () => {
  describe('the table', () => {
    it('reaches every mode from absent, and absent again from every mode (no copy is stuck)', () => {
      const reached = pathsFromAbsent();
      expect([...reached.keys()]).to.have.members(modes);
      for (const mode of modes) {
        const seen = new Set<Mode>([mode]);
        const queue = [mode];
        while (queue.length > 0) {
          const from = queue.shift()!;
          for (const [f, to] of TRANSITIONS) {
            if (f !== from || seen.has(to)) continue;
            seen.add(to);
            queue.push(to);
          }
        }
        expect(seen.has('absent'), `${mode} can reach absent`).to.equal(true);
      }
    });

    it('has each row once, names only known modes, never goes from a mode to itself, and says when', () => {
      const keys = TRANSITIONS.map(([from, to]) => `${from}->${to}`);
      expect(new Set(keys).size).to.equal(keys.length);
      for (const [from, to, when] of TRANSITIONS) {
        expect(modes).to.include(from);
        expect(modes).to.include(to);
        expect(from, `${from} -> ${to}`).to.not.equal(to);
        expect(when.length).to.be.greaterThan(10);
      }
    });

    it('maps every named event only onto rows of the table', () => {
      for (const event of events) {
        for (const [from, to] of Object.entries(EVENTS[event]) as [Mode, Mode][]) {
          expect(allowed(from, to), `${event}: ${from} -> ${to}`).to.equal(true);
        }
      }
    });
  });

  describe('every pair of modes', () => {
    for (const from of modes) {
      for (const to of modes) {
        if (allowed(from, to)) {
          it(`allows ${from} -> ${to}`, () => {
            const state = copyIn(from);
            state.setMode(to);
            expect(state.mode).to.equal(to);
          });
        } else {
          it(`refuses ${from} -> ${to}`, () => {
            const state = copyIn(from);
            refused(state, () => state.setMode(to), to);
          });
        }
      }
    }
  });

  describe('every event in every mode', () => {
    for (const event of events) {
      for (const mode of modes) {
        const targets: Partial<Record<Mode, Mode>> = EVENTS[event];
        const to = targets[mode];
        if (to) {
          it(`${event} takes ${mode} to ${to}`, () => {
            const state = copyIn(mode);
            state.on(event);
            expect(state.mode).to.equal(to);
          });
        } else {
          it(`${event} is refused in ${mode}`, () => {
            const state = copyIn(mode);
            const error = refused(state, () => state.on(event), mode);
            expect(error.message).to.include(`event ${event}`);
          });
        }
      }
    }
  });

  it('counts as dirty exactly the modes that may hold unsaved work, and as withdrawn those an eviction or replacement holds', () => {
    const dirty = modes.filter((m) => copyIn(m).dirty);
    const withdrawn = modes.filter((m) => copyIn(m).withdrawn);
    expect(dirty).to.have.members(['dirty', 'saving', 'withdrawn-dirty', 'withdrawn-saving']);
    expect(withdrawn).to.have.members(['withdrawn-clean', 'withdrawn-dirty', 'withdrawn-saving']);
  });

  describe('real-life sequences', () => {
    it('a project is extracted, changed, saved while a job changes it again, then saved clean', () => {
      const state = new CopyState('p1');
      // The second change starts during the first save: the copy is already dirty, so no event; the save ends dirty.
      expect(walk(state, ['materializing', 'clean', 'change', 'saveStarted', 'savedDirty', 'saveStarted', 'savedClean'])).to.deep.equal([
        'absent',
        'materializing',
        'clean',
        'dirty',
        'saving',
        'dirty',
        'saving',
        'clean',
      ]);
    });

    it('an idle dirty copy is saved, then evicted', () => {
      const state = copyIn('dirty');
      expect(walk(state, ['withdraw', 'saveStarted', 'savedClean', 'absent'])).to.deep.equal([
        'dirty',
        'withdrawn-dirty',
        'withdrawn-saving',
        'withdrawn-clean',
        'absent',
      ]);
    });

    it('an eviction whose write-back fails gives the copy back, still dirty', () => {
      const state = copyIn('dirty');
      expect(walk(state, ['withdraw', 'saveStarted', 'savedDirty', 'giveBack'])).to.deep.equal([
        'dirty',
        'withdrawn-dirty',
        'withdrawn-saving',
        'withdrawn-dirty',
        'dirty',
      ]);
    });

    it('a replacement refused because a job admitted earlier starts a change leaves the copy dirty', () => {
      const state = copyIn('clean');
      expect(walk(state, ['withdraw', 'change', 'giveBack'])).to.deep.equal(['clean', 'withdrawn-clean', 'withdrawn-dirty', 'dirty']);
    });

    it('a failed download leaves nothing, and the next request starts over', () => {
      const state = new CopyState('p1');
      expect(walk(state, ['materializing', 'absent', 'materializing', 'clean'])).to.deep.equal(['absent', 'materializing', 'absent', 'materializing', 'clean']);
    });

    it('catches the bugs the flags let pass: saving a clean copy, withdrawing one mid-save, using an evicted one', () => {
      const clean = copyIn('clean');
      refused(clean, () => clean.on('saveStarted'), 'clean');
      const saving = copyIn('saving');
      refused(saving, () => saving.on('withdraw'), 'saving');
      const evicted = copyIn('withdrawn-clean');
      evicted.setMode('absent');
      refused(evicted, () => evicted.on('change'), 'absent');
      refused(evicted, () => evicted.on('giveBack'), 'absent');
    });
  });
});
