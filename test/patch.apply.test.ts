/**
 * Applying hunks in memory: the reference implementations' cases (openai-agents-python tests/test_apply_diff.py,
 * openai/codex apply-patch lib.rs tests and tests/fixtures/scenarios), the fuzz levels and what they report, and
 * the refusals: a hunk that is not found, and a pure addition with nothing to place it by (codex #30946).
 */
import { expect } from 'chai';
import type { ToolhostError } from '../lib/errors.js';
import { applyHunks } from '../lib/patch/apply.js';
import { parseEnvelope, parseUpdateDiff } from '../lib/patch/parse.js';
import type { Hunk } from '../lib/patch/types.js';

const v4a = (input: string, diff: string) => applyHunks(input, parseUpdateDiff(diff, 'diff'), 'f.txt');
const hunksOf = (patch: string): Hunk[] => (parseEnvelope(patch)[0] as { hunks: Hunk[] }).hunks;

function failed(fn: () => unknown): ToolhostError {
  try {
    fn();
  } catch (err) {
    expect((err as ToolhostError).code).to.equal('patch_failed');
    return err as ToolhostError;
  }
  throw new Error('expected patch_failed');
}

describe('patch apply: reference cases', () => {
  it('applies agents-python test_apply_diff cases', () => {
    expect(v4a('', '@@\n+hello\n+world').text).to.equal('hello\nworld\n');
    expect(v4a('line1\nline2\nline3\n', '@@ line1\n-line2\n+updated\n line3').text).to.equal('line1\nupdated\nline3\n');
    expect(v4a('line1\r\nline2\r\nline3\r\n', '@@ line1\n-line2\n+updated\n line3').text).to.equal('line1\r\nupdated\r\nline3\r\n');
    expect(v4a('line1\nline2\nline3\n', '@@ line1\r\n-line2\r\n+updated\r\n line3').text).to.equal('line1\nupdated\nline3\n');
  });

  it('applies the stacked-anchor example of the tool description to the right class', () => {
    const input = 'class BaseClass\n    def search():\n        pass\n\nclass Subclass\n    def search():\n        pass\n';
    const diff =
      '@@ class BaseClass\n@@     def search():\n-        pass\n+        raise NotImplementedError()\n\n@@ class Subclass\n@@     def search():\n-        pass\n+        raise NotImplementedError()';
    expect(v4a(input, diff).text).to.equal(input.replaceAll('        pass', '        raise NotImplementedError()'));
    const second = v4a(
      'class First\n    def run():\n        pass\nclass Second\n    def run():\n        pass\n',
      '@@ class Second\n@@     def run():\n-        pass\n+        return 1',
    );
    expect(second.text).to.equal('class First\n    def run():\n        pass\nclass Second\n    def run():\n        return 1\n');
  });

  it('applies codex lib.rs cases: multiple chunks, interleaved changes, deletion only', () => {
    expect(
      applyHunks('foo\nbar\nbaz\nqux\n', hunksOf('*** Begin Patch\n*** Update File: m\n@@\n foo\n-bar\n+BAR\n@@\n baz\n-qux\n+QUX\n*** End Patch'), 'm').text,
    ).to.equal('foo\nBAR\nbaz\nQUX\n');
    const interleaved = hunksOf('*** Begin Patch\n*** Update File: i\n@@\n a\n-b\n+B\n@@\n c\n d\n-e\n+E\n@@\n f\n+g\n*** End of File\n*** End Patch');
    expect(applyHunks('a\nb\nc\nd\ne\nf\n', interleaved, 'i').text).to.equal('a\nB\nc\nd\nE\nf\ng\n');
    expect(applyHunks('one\ntwo\nthree\n', hunksOf('*** Begin Patch\n*** Update File: l\n@@\n one\n-two\n three\n*** End Patch'), 'l').text).to.equal(
      'one\nthree\n',
    );
  });

  it('pins a hunk to the end with *** End of File (codex scenario 022) and appends a pure addition there', () => {
    expect(v4a('first\nsecond\n', '@@\n first\n-second\n+second updated\n*** End of File').text).to.equal('first\nsecond updated\n');
    expect(v4a('a\nb\n', '@@\n+c\n*** End of File').text).to.equal('a\nb\nc\n');
  });

  it('inserts a pure addition right after its @@ line', () => {
    expect(v4a('def f():\n    return 1\n\ndef g():\n    return 2\n', '@@ def g():\n+    """G."""').text).to.equal(
      'def f():\n    return 1\n\ndef g():\n    """G."""\n    return 2\n',
    );
  });

  it('keeps a file without a final newline that way, and CRLF lines CRLF', () => {
    expect(v4a('a\nb', '@@\n a\n-b\n+c').text).to.equal('a\nc');
    expect(v4a('a\nb', '@@\n+c\n*** End of File').text).to.equal('a\nb\nc');
    expect(v4a('x\r\ny\r\n', '@@\n x\n+z\n y').text).to.equal('x\r\nz\r\ny\r\n');
  });

  it('retries a hunk without its trailing empty context line, as codex does', () => {
    expect(v4a('a\nb\n', '@@\n a\n-b\n+c\n').text).to.equal('a\nc\n');
    expect(v4a('a\nb', '@@\n a\n-b\n+c\n \n').text).to.equal('a\nc');
  });
});

describe('patch apply: fuzz', () => {
  it('matches exactly without a note', () => {
    expect(v4a('a \nb\n', '@@\n-a \n+A').notes).to.deep.equal([]);
  });

  it('tolerates trailing whitespace, says so, and keeps the file context lines as they were', () => {
    const r = v4a('keep  \nold\t\nend\n', '@@\n keep\n-old\n+new\n end');
    expect(r.text).to.equal('keep  \nnew\nend\n');
    expect(r.notes).to.deep.equal(['f.txt: hunk 1 matched at line 1 only by ignoring trailing whitespace']);
  });

  it('tolerates Unicode punctuation look-alikes (curly quotes, dashes, NBSP), says so, and keeps the file characters in context', () => {
    const input = 'title = “Hello” — world\nx\u00a0= 1\nprint(‘done’)\n';
    const r = v4a(input, '@@\n title = "Hello" - world\n-x = 1\n+x = 2\n print(\'done\')');
    expect(r.text).to.equal('title = “Hello” — world\nx = 2\nprint(‘done’)\n');
    expect(r.notes).to.have.length(1);
    expect(r.notes[0]).to.include('hunk 1 matched at line 1 only by treating Unicode punctuation look-alikes');
  });

  it('finds an @@ line across look-alikes, and notes it', () => {
    const r = v4a('def “quoted”():\n    pass\n', '@@ def "quoted"():\n-    pass\n+    return 1');
    expect(r.text).to.equal('def “quoted”():\n    return 1\n');
    expect(r.notes[0]).to.include('@@ line was found at line 1');
  });

  it('never ignores indentation, and says that it differs', () => {
    const e = failed(() => v4a('def f():\n    return 1\n', '@@\n def f():\n-  return 1\n+  return 2'));
    expect(e.message).to.include('match at line 1 only if indentation is ignored');
  });

  it('places a hunk whose @@ line is missing only when its own lines occur once', () => {
    const once = v4a('a\nb\n', '@@ nope\n-b\n+B');
    expect(once.text).to.equal('a\nB\n');
    expect(once.notes[0]).to.include('"nope" is not in the file; placed by its own lines');
    const twice = failed(() => v4a('b\nx\nb\n', '@@ nope\n-b\n+B'));
    expect(twice.message).to.include('its @@ line "nope" was not found');
  });
});

describe('patch apply: refusals', () => {
  it('refuses a pure addition with no context and no @@ line instead of appending it (codex #30946, scenario 016)', () => {
    const e = failed(() =>
      applyHunks('line1\nline2\n', hunksOf('*** Begin Patch\n*** Update File: input.txt\n@@\n+added line 1\n+added line 2\n*** End Patch'), 'input.txt'),
    );
    expect(e.message).to.include('could not apply hunk 1 to "input.txt"');
    expect(e.message).to.include('no telling where they go (they are not appended to the end)');
    expect(e.message).to.include('*** End of File');
  });

  it('refuses a pure addition whose @@ line is not in the file', () => {
    expect(failed(() => v4a('a\nb\n', '@@ class Missing\n+x')).message).to.include('a hunk that only adds lines has nothing else to place it by');
  });

  it('names the hunk, the closest lines with numbers and the first difference when context is not found', () => {
    const input = `${Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n')}\ndef greet():\n    print('Hi')\n    return\n`;
    const e = failed(() =>
      applyHunks(
        input,
        hunksOf(
          '*** Begin Patch\n*** Update File: app.py\n@@\n line 1\n-line 2\n+LINE 2\n@@\n def greet():\n-    print("Hello")\n+    print(1)\n*** End Patch',
        ),
        'app.py',
      ),
    );
    expect(e.message).to.include('could not apply hunk 2 of 2 to "app.py" (patch line 7)');
    expect(e.message).to.include('its 2 context and removed lines were not found after line 2');
    expect(e.message).to.include('    31\tdef greet():');
    expect(e.message).to.include("    32\t    print('Hi')");
    expect(e.message).to.include('First difference, line 32');
    expect(e.details).to.deep.include({ path: 'app.py', hunk: 2, hunks: 2, patch_line: 7, expected: [' def greet():', '-    print("Hello")'] });
    expect((e.details as { closest: { line: number }[] }).closest.map((c) => c.line)).to.include.members([31, 32]);
  });

  it('says when hunks are out of file order', () => {
    const e = failed(() => v4a('a\nb\nc\nd\n', '@@\n c\n-d\n+D\n@@\n a\n-b\n+B'));
    expect(e.message).to.include('hunk 2 of 2').and.include('at line 1, before where hunk 1 ended (line 4)');
  });
});
