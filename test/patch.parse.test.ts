/**
 * The patch parsers against the grammars' published examples and the reference implementations' own test cases:
 * openai/codex codex-rs/apply-patch (parser.rs tests, apply_patch_tool_instructions.md) for the envelope, and
 * openai-agents-python (tests/test_apply_diff.py) for V4A diffs.
 */
import { expect } from 'chai';
import { ToolhostError } from '../lib/errors.js';
import { firstPathOf, parseCreateDiff, parseEnvelope, parseUpdateDiff } from '../lib/patch/parse.js';

function invalid(fn: () => unknown): ToolhostError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ToolhostError);
    expect((err as ToolhostError).code).to.equal('patch_invalid');
    return err as ToolhostError;
  }
  throw new Error('expected patch_invalid');
}

describe('patch parser: Codex envelope', () => {
  it('parses the example of apply_patch_tool_instructions.md (add, update with move, delete)', () => {
    const ops = parseEnvelope(
      '*** Begin Patch\n*** Add File: hello.txt\n+Hello world\n*** Update File: src/app.py\n*** Move to: src/main.py\n@@ def greet():\n-print("Hi")\n+print("Hello, world!")\n*** Delete File: obsolete.txt\n*** End Patch\n',
    );
    expect(ops).to.deep.equal([
      { kind: 'add', path: 'hello.txt', content: 'Hello world\n', at: 2 },
      {
        kind: 'update',
        path: 'src/app.py',
        moveTo: 'src/main.py',
        at: 4,
        hunks: [
          {
            anchors: ['def greet():'],
            lines: [
              { op: '-', text: 'print("Hi")' },
              { op: '+', text: 'print("Hello, world!")' },
            ],
            endOfFile: false,
            at: 6,
          },
        ],
      },
      { kind: 'delete', path: 'obsolete.txt', at: 9 },
    ]);
  });

  it('parses codex parser.rs cases: an update without @@, an update followed by an add, padded markers', () => {
    const noHeader = parseEnvelope('*** Begin Patch\n*** Update File: file2.py\n import foo\n+bar\n*** End Patch');
    expect(noHeader[0]).to.deep.include({ kind: 'update', path: 'file2.py' });
    expect((noHeader[0] as { hunks: unknown[] }).hunks).to.deep.equal([
      {
        anchors: [],
        lines: [
          { op: ' ', text: 'import foo' },
          { op: '+', text: 'bar' },
        ],
        endOfFile: false,
        at: 3,
      },
    ]);
    const two = parseEnvelope('*** Begin Patch\n*** Update File: file.py\n@@\n+line\n*** Add File: other.py\n+content\n*** End Patch');
    expect(two.map((o) => o.kind)).to.deep.equal(['update', 'add']);
    expect(two[1]).to.deep.include({ path: 'other.py', content: 'content\n' });
    const padded = parseEnvelope('*** Begin Patch \n*** Add File: foo\n+hi\n *** End Patch');
    expect(padded).to.deep.equal([{ kind: 'add', path: 'foo', content: 'hi\n', at: 2 }]);
  });

  it('reads CRLF patches, a missing final newline, and a heredoc wrapper as codex lenient mode does', () => {
    const crlf = parseEnvelope('*** Begin Patch\r\n*** Update File: a.txt\r\n@@\r\n-x\r\n+y\r\n*** End Patch\r\n');
    expect(crlf[0]).to.deep.include({ kind: 'update', path: 'a.txt' });
    const heredoc = parseEnvelope("<<'EOF'\n*** Begin Patch\n*** Delete File: gone.txt\n*** End Patch\nEOF\n");
    expect(heredoc).to.deep.equal([{ kind: 'delete', path: 'gone.txt', at: 3 }]);
  });

  it('stacks @@ lines (class, then method), keeps *** End of File, and treats a unified-diff header as a bare @@', () => {
    const [op] = parseEnvelope(
      '*** Begin Patch\n*** Update File: m.py\n@@ class BaseClass\n@@     def search():\n-        pass\n+        return 1\n*** End of File\n@@ -10,2 +10,2 @@\n-a\n+b\n*** End Patch',
    );
    const hunks = (op as { hunks: { anchors: string[]; endOfFile: boolean }[] }).hunks;
    expect(hunks.map((h) => h.anchors)).to.deep.equal([['class BaseClass', '    def search():'], []]);
    expect(hunks.map((h) => h.endOfFile)).to.deep.equal([true, false]);
  });

  it('keeps an empty line inside a hunk as an empty context line', () => {
    const [op] = parseEnvelope('*** Begin Patch\n*** Update File: a\n@@\n a\n\n-b\n+c\n*** End Patch');
    expect((op as { hunks: { lines: unknown[] }[] }).hunks[0]?.lines).to.deep.equal([
      { op: ' ', text: 'a' },
      { op: ' ', text: '' },
      { op: '-', text: 'b' },
      { op: '+', text: 'c' },
    ]);
  });

  it('refuses malformed patches, saying where and what was expected', () => {
    expect(invalid(() => parseEnvelope('bad')).message).to.include('line 1: expected "*** Begin Patch"');
    expect(invalid(() => parseEnvelope('*** Begin Patch\n*** Add File: a\n+x')).message).to.include('"*** End Patch" as the last line');
    expect(invalid(() => parseEnvelope('*** Begin Patch\n*** End Patch')).message).to.include('no file operations');
    expect(invalid(() => parseEnvelope('*** Begin Patch\n*** Update File: test.py\n*** End Patch')).message).to.include('has no hunks');
    const header = invalid(() => parseEnvelope('*** Begin Patch\n*** Frobnicate File: foo\n*** End Patch'));
    expect(header.message).to.include('line 2: expected a file header');
    const noPrefix = invalid(() => parseEnvelope('*** Begin Patch\n*** Update File: a\n@@\n-x\nplain\n*** End Patch'));
    expect(noPrefix.message).to.include('line 5').and.include('has no prefix');
    expect(noPrefix.details).to.deep.equal({ line: 5 });
    expect(invalid(() => parseEnvelope('*** Begin Patch\n*** Add File: a\n+x\nforgot plus\n*** End Patch')).message).to.include('starts with "+"');
    expect(invalid(() => parseEnvelope('*** Begin Patch\n*** Update File: a\n@@\n*** End of File\n*** End Patch')).message).to.include(
      'End of File must follow',
    );
  });

  it('finds the first path for the lock without parsing the rest', () => {
    expect(firstPathOf('*** Begin Patch\n*** Update File: src/a.ts \n@@\n-x\n+y\n*** Add File: b\n+z\n*** End Patch')).to.equal('src/a.ts');
    expect(firstPathOf('nothing here')).to.equal(undefined);
  });
});

describe('patch parser: V4A diffs of apply_patch_call operations', () => {
  it('parses an update_file diff, with anchors and an optional first @@', () => {
    expect(parseUpdateDiff('@@ line1\n-line2\n+updated\n line3', 'd')).to.deep.equal([
      {
        anchors: ['line1'],
        lines: [
          { op: '-', text: 'line2' },
          { op: '+', text: 'updated' },
          { op: ' ', text: 'line3' },
        ],
        endOfFile: false,
        at: 1,
      },
    ]);
    expect(parseUpdateDiff(' a\n-b\n+c\n', 'd')[0]?.anchors).to.deep.equal([]);
  });

  it('refuses an envelope given as a diff, and a diff with a stray line', () => {
    expect(invalid(() => parseUpdateDiff('*** Begin Patch\n*** Update File: a\n@@\n-x\n+y\n*** End Patch', 'operations[0].diff')).message).to.include(
      'send it as "patch"',
    );
    expect(invalid(() => parseUpdateDiff('@@\n-x\n+y\n*** Add File: b', 'operations[0].diff')).message).to.include('operations[0].diff line 4');
  });

  it('joins a create_file diff as the reference does: a final newline is an empty "+" line, CRLF kept', () => {
    expect(parseCreateDiff('+hello\n+world\n+', 'd')).to.equal('hello\nworld\n');
    expect(parseCreateDiff('+hello\n+world\n', 'd')).to.equal('hello\nworld');
    expect(parseCreateDiff('+hello\r\n+world\r\n+', 'd')).to.equal('hello\r\nworld\r\n');
    expect(invalid(() => parseCreateDiff('plain line', 'd')).message).to.include('starts with "+"');
  });
});
