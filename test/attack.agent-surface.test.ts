/**
 * The attack pass over the agent surface of issue #14: what a model turned hostile (by a prompt injection) can
 * send or leave in a project, and what each answer must still be: within its budget, and saying how to go on.
 */
import { expect } from 'chai';
import { startServer, type TestServer } from './helpers/harness.js';

/** The output budget the server runs with: small, so a few thousand lines overflow it. */
const BUDGET = 2000;

describe('attack pass: the agent surface', () => {
  let s: TestServer;
  /** The model text of a tool call (POST /tools/{name}/call?format=text). */
  const modelText = async (tool: string, args: Record<string, unknown>): Promise<{ text: string; isError: boolean }> => {
    const r = await s.api(`/tools/${tool}/call?format=text`, { project_id: 'a', ...args });
    expect(r.status, JSON.stringify(r.body).slice(0, 300)).to.equal(200);
    return { text: r.body.text, isError: r.body.is_error };
  };
  const lines = (n: number, from = 1): string => Array.from({ length: n }, (_, i) => `line ${from + i} ${'y'.repeat(40)}\n`).join('');

  before(async () => {
    s = await startServer({ budgets: { outputChars: BUDGET } });
    expect((await s.putProject('a', { 'small.txt': 'one\ntwo\nthree\n' })).status).to.equal(201);
  });
  after(async () => s?.close({ force: true }));

  describe('file_edit and file_insert snippets', () => {
    /** Follows the closing line of a cut snippet answer: file_read from the start_line it names gives the next line. */
    async function readOnFromFooter(text: string, path: string, expectedLine: string): Promise<void> {
      const footer = text.trimEnd().split('\n').at(-1) ?? '';
      const m = /^\[1 more changed region not shown; read them with file_read \{path: "([^"]+)", start_line: (\d+)\}\]$/.exec(footer);
      expect(m, footer).to.not.equal(null);
      expect(m?.[1]).to.equal(path);
      const r = await s.api('/file/read', { project_id: 'a', path, start_line: Number(m?.[2]), end_line: Number(m?.[2]) });
      expect(r.body.content).to.equal(expectedLine);
    }

    it('cuts one huge inserted region to the output budget and says where to read on', async () => {
      const { text, isError } = await modelText('file_insert', { path: 'small.txt', insert_line: 1, text: lines(5000, 1) });
      expect(isError).to.equal(false);
      expect(text.length, 'model text').to.be.below(BUDGET + 400);
      // The snippet shows line 1 ("one") and the inserted lines from line 2 = "line 1 ...".
      const last = text.trimEnd().split('\n').at(-2) ?? '';
      const shownTo = Number(/^\s*(\d+)\t/.exec(last)?.[1]);
      await readOnFromFooter(text, 'small.txt', `line ${shownTo} ${'y'.repeat(40)}\n`);
      const json = await s.api('/file/insert', { project_id: 'a', path: 'small.txt', insert_line: 0, text: lines(5000, 1) });
      const shown = json.body.snippets.map((x: { text: string }) => x.text).join('');
      expect(shown.length, 'JSON snippets').to.be.at.most(BUDGET);
      expect(json.body.snippets_cut).to.equal(1);
    });

    it('cuts one huge edited region to the output budget and says where to read on', async () => {
      await s.api('/file/write', { project_id: 'a', path: 'e.txt', content: 'head\nMARK\ntail\n' });
      const { text, isError } = await modelText('file_edit', { path: 'e.txt', old_str: 'MARK\n', new_str: lines(5000, 1) });
      expect(isError).to.equal(false);
      expect(text.length, 'model text').to.be.below(BUDGET + 400);
      const last = text.trimEnd().split('\n').at(-2) ?? '';
      const shownTo = Number(/^\s*(\d+)\t/.exec(last)?.[1]);
      await readOnFromFooter(text, 'e.txt', `line ${shownTo} ${'y'.repeat(40)}\n`);
    });

    it('answers an edit matching a huge number of times within the budget, with the count', async () => {
      await s.api('/file/write', { project_id: 'a', path: 'many.txt', content: 'a\n'.repeat(100_000) });
      const { text, isError } = await modelText('file_edit', { path: 'many.txt', old_str: 'a', new_str: 'b' });
      expect(isError).to.equal(true);
      expect(text.length, text.slice(0, 300)).to.be.below(BUDGET);
      const error = JSON.parse(text).error;
      expect(error).to.include({ code: 'edit_count_mismatch', matches: 100_000 });
      expect(error.message).to.include('matched 100000 times').and.include('expected_replacements: 100000');
    });

    it('answers an edit of a huge number of matches within the budget', async () => {
      const { text, isError } = await modelText('file_edit', { path: 'many.txt', old_str: 'a', new_str: 'b', expected_replacements: 100_000 });
      expect(isError).to.equal(false);
      expect(text.length, 'model text').to.be.below(BUDGET + 400);
      expect(text.split('\n')[0]).to.match(/^Edited many.txt: 100000 replacements \(lines 1, 2, .*, …\)\.$/);
      // The JSON answer too: the count in full, the first lines listed (not 100,000 numbers).
      const back = await s.api('/file/edit', { project_id: 'a', path: 'many.txt', old_str: 'b', new_str: 'a', expected_replacements: 100_000 });
      expect(back.body.replacements).to.equal(100_000);
      expect(back.body.lines).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
    });

    it('refuses a NUL in a search pattern or glob with 400, not a failed launch', async () => {
      for (const args of [{ pattern: 'a\0b' }, { pattern: 'a', glob: '*\0.ts' }]) {
        const r = await s.api('/search', { project_id: 'a', ...args });
        expect(r.status, JSON.stringify(r.body)).to.equal(400);
        expect(r.body.error.message).to.include('NUL');
      }
    });
  });

  describe('file_read of files that only look like images', () => {
    const png = (rest: string): string => `\\x89PNG\\r\\n\\x1a\\n${rest}`;
    const cases: [string, string][] = [
      ['a header claiming 4294967295x4294967295 pixels', png('\\0\\0\\0\\rIHDR\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff')],
      ['a header claiming 0x0 pixels', png('\\0\\0\\0\\rIHDR\\0\\0\\0\\0\\0\\0\\0\\0')],
      ['a header cut short after the magic bytes', png('\\0\\0\\0\\rIHDR')],
      ['a gif header cut short', 'GIF89a'],
    ];
    for (const [what, bytes] of cases) {
      it(`refuses ${what} with binary_file instead of sending it to the model`, async () => {
        const made = await s.api('/execute', { project_id: 'a', command: `printf '${bytes}' > fake.png` });
        expect(made.body.exit_code, JSON.stringify(made.body)).to.equal(0);
        const { text, isError } = await modelText('file_read', { path: 'fake.png' });
        expect(isError, text).to.equal(true);
        const error = JSON.parse(text).error;
        expect(error.code).to.equal('binary_file');
        expect(error.message).to.include('execute');
      });
    }
  });
});
