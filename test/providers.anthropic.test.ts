/**
 * Anthropic's built-in tools run natively: tool_use blocks in the shape the Messages API returns them (built from
 * the text editor tool's documented examples, primes.py among them, and the reference implementation's commands),
 * replayed through POST /anthropic/tool_use against a real project on a real supervisor, answered with tool_result
 * blocks that go into the SDK's types as they are. The typecheck holds our request and answer types to the SDK's.
 */
import type { ToolBash20250124, ToolResultBlockParam, ToolTextEditor20250728, ToolUnion, ToolUseBlock } from '@anthropic-ai/sdk/resources/messages';
import { expect } from 'chai';
import type { AnthropicBashTool, AnthropicTextEditorTool, AnthropicToolResultBlock, AnthropicToolUseRequest } from '../lib/providers/anthropic-types.js';
import { startServer, type TestServer } from './helpers/harness.js';

// Our types where the SDK's go, without casts: a block from the API is a request's block, our answer is a block
// the next request takes, and the declarations are Messages tools.
const blockOf = (b: ToolUseBlock): AnthropicToolUseRequest['block'] => b;
const resultParam = (r: AnthropicToolResultBlock): ToolResultBlockParam => r;
const declarations = (tools: [AnthropicTextEditorTool, AnthropicBashTool]): ToolUnion[] => {
  const [editor, bash]: [ToolTextEditor20250728, ToolBash20250124] = tools;
  return [editor, bash];
};

/** The text editor docs' example file, with its missing colon on line 18. */
const PRIMES = [
  'def is_prime(n):',
  '    """Check if a number is prime."""',
  '    if n <= 1:',
  '        return False',
  '    if n <= 3:',
  '        return True',
  '    if n % 2 == 0 or n % 3 == 0:',
  '        return False',
  '    i = 5',
  '    while i * i <= n:',
  '        if n % i == 0 or n % (i + 2) == 0:',
  '            return False',
  '        i += 6',
  '    return True',
  '',
  'def get_primes(limit):',
  '    """Generate a list of prime numbers up to the given limit."""',
  '    for num in range(2, limit + 1)',
  '        if is_prime(num):',
  '            primes.append(num)',
  '    return primes',
  '',
].join('\n');

let seq = 0;
/** A tool_use block as the Messages API returns one. */
function toolUse(name: string, input: Record<string, unknown>): ToolUseBlock {
  seq += 1;
  return { type: 'tool_use', id: `toolu_01A09q90qw90lq91783${seq}`, name, input, caller: { type: 'direct' } };
}
const editor = (input: Record<string, unknown>) => toolUse('str_replace_based_edit_tool', input);

describe('Anthropic built-in tools: POST /anthropic/tool_use', () => {
  let s: TestServer;
  let root: string;

  /** Runs `block` on project "demo"; checks the answer is the tool_result of that block and returns it. */
  async function run(block: ToolUseBlock, session?: string): Promise<{ text: string; isError: boolean; result: AnthropicToolResultBlock }> {
    const r = await s.api('/anthropic/tool_use', { project_id: 'demo', block: blockOf(block), ...(session ? { session } : {}) });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    const result = r.body as AnthropicToolResultBlock;
    expect(resultParam(result).tool_use_id).to.equal(block.id);
    expect(result.type).to.equal('tool_result');
    const text = result.content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('\n');
    return { text, isError: result.is_error, result };
  }
  async function read(path: string): Promise<string> {
    const r = await s.api('/file/read', { project_id: 'demo', path });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return r.body.content as string;
  }

  before(async () => {
    s = await startServer({ budgets: { readChars: 4000, listChars: 2000 } });
    const files: Record<string, string | { link: string }> = {
      'primes.py': PRIMES,
      'src/app.ts': 'export const port = 3000;\n',
      'src/lib/deep/x.ts': 'x\n',
      '.hidden/secret.txt': 'hidden\n',
      '.env': 'A=1\n',
      'big.txt': Array.from({ length: 3000 }, (_, k) => `line ${k + 1}`).join('\n'),
    };
    for (let k = 0; k < 150; k++) files[`many/file-${String(k).padStart(3, '0')}.txt`] = 'x\n';
    expect((await s.putProject('demo', files)).status).to.equal(201);
    const pwd = await s.api('/execute', { project_id: 'demo', command: 'ln -s /etc out-link && pwd' });
    root = (pwd.body.stdout as string).trim();
  });
  after(async () => s?.close({ force: true }));

  it('lists the tool types to declare to the Messages API', async () => {
    const r = await s.api('/tools?format=anthropic-builtin');
    expect(r.status).to.equal(200);
    expect(r.body.tools).to.deep.equal([
      { type: 'text_editor_20250728', name: 'str_replace_based_edit_tool', max_characters: 4000 },
      { type: 'bash_20250124', name: 'bash' },
    ]);
    expect(declarations(r.body.tools)).to.have.length(2);
    expect(r.body.call).to.equal('POST /anthropic/tool_use');
  });

  it('views a file like cat -n, whole, with a view_range, and with -1 for the end', async () => {
    const whole = await run(editor({ command: 'view', path: '/primes.py' }));
    expect(whole.isError).to.equal(false);
    expect(whole.text).to.match(/^Here's the result of running `cat -n` on \/primes\.py:\n {5}1\tdef is_prime\(n\):\n/);
    expect(whole.text).to.include('    18\t    for num in range(2, limit + 1)\n');
    const range = await run(editor({ command: 'view', path: '/primes.py', view_range: [16, 18] }));
    expect(range.text).to.equal(
      "Here's the result of running `cat -n` on /primes.py:\n    16\tdef get_primes(limit):\n" +
        '    17\t    """Generate a list of prime numbers up to the given limit."""\n    18\t    for num in range(2, limit + 1)\n',
    );
    const toEnd = await run(editor({ command: 'view', path: 'primes.py', view_range: [20, -1] }));
    expect(toEnd.text).to.equal("Here's the result of running `cat -n` on primes.py:\n    20\t            primes.append(num)\n    21\t    return primes\n");
    const past = await run(editor({ command: 'view', path: '/primes.py', view_range: [90, 95] }));
    expect(past.isError).to.equal(true);
    expect(past.text).to.include('Invalid `view_range`: [90, 95]').and.include('[1, 21]');
  });

  it('takes the project root as commands see it (pwd) as the root', async () => {
    const r = await run(editor({ command: 'view', path: `${root}/src/app.ts` }));
    expect(r.isError, r.text).to.equal(false);
    expect(r.text).to.include('     1\texport const port = 3000;');
  });

  it('cuts a view of a huge file to the budget, with one line saying how to see the rest', async () => {
    const r = await run(editor({ command: 'view', path: '/big.txt' }));
    expect(r.isError).to.equal(false);
    expect(r.text.length).to.be.at.most(4200);
    const last = r.text.trimEnd().split('\n').at(-1) ?? '';
    const m = /^\[lines 1-(\d+) of 3000 shown, .*view \/big\.txt with view_range \[(\d+), -1\]\]$/.exec(last);
    expect(m, last).to.not.equal(null);
    expect(Number(m?.[2])).to.equal(Number(m?.[1]) + 1);
    const next = await run(editor({ command: 'view', path: '/big.txt', view_range: [Number(m?.[2]), -1] }));
    expect(next.text).to.include(`\t line ${m?.[2]}\n`.replace('\t ', '\t'));
  });

  it('lists a directory two levels deep without hidden entries, within the budget', async () => {
    const r = await run(editor({ command: 'view', path: '/' }));
    expect(r.isError).to.equal(false);
    const lines = r.text.split('\n');
    expect(lines[0]).to.equal("Here's the files and directories up to 2 levels deep in /, excluding hidden items and what .gitignore excludes:");
    expect(lines).to.include.members(['/', '/primes.py', '/src/', '/src/app.ts', '/src/lib/']);
    expect(lines).to.not.include('/src/lib/deep/x.ts');
    expect(r.text).to.not.include('.hidden').and.not.include('.env');
    expect(r.text.length).to.be.at.most(2000);
    expect(lines).to.include('/many/ [150 entries not shown]');
    expect(lines.at(-2)).to.equal('[the entries of 1 folder(s) marked "[N entries not shown]" are left out; view a subfolder to list it, e.g. /many]');
    const sub = await run(editor({ command: 'view', path: '/src' }));
    expect(sub.text.split('\n').slice(1)).to.deep.equal(['/src', '/src/app.ts', '/src/lib/', '/src/lib/deep/', '']);
    const withRange = await run(editor({ command: 'view', path: '/src', view_range: [1, 2] }));
    expect(withRange.isError).to.equal(true);
    expect(withRange.text).to.equal('The `view_range` parameter is not allowed when `path` points to a directory.');
  });

  it('creates a file, and says where', async () => {
    const text =
      'import unittest\nimport primes\n\nclass TestPrimes(unittest.TestCase):\n    def test_is_prime(self):\n        self.assertTrue(primes.is_prime(2))\n';
    const r = await run(editor({ command: 'create', path: '/test_primes.py', file_text: text }));
    expect(r).to.include({ text: 'File created successfully at: /test_primes.py', isError: false });
    expect(await read('test_primes.py')).to.equal(text);
    const nested = await run(editor({ command: 'create', path: '/docs/new/notes.md', file_text: '# notes\n' }));
    expect(nested.isError).to.equal(false);
    expect(await read('docs/new/notes.md')).to.equal('# notes\n');
    const missing = await run(editor({ command: 'create', path: '/x.txt' }));
    expect(missing).to.include({ text: 'Parameter `file_text` is required for command: create', isError: true });
  });

  it('replaces a unique string and shows the edited snippet', async () => {
    const r = await run(
      editor({ command: 'str_replace', path: '/primes.py', old_str: '    for num in range(2, limit + 1)\n', new_str: '    for num in range(2, limit + 1):\n' }),
    );
    expect(r.isError, r.text).to.equal(false);
    expect(r.text).to.match(/^The file \/primes\.py has been edited\. Here's the result of running `cat -n` on a snippet of \/primes\.py:\n/);
    expect(r.text).to.include('    18\t    for num in range(2, limit + 1):\n');
    expect(r.text).to.match(/Review the changes and make sure they are as expected\. Edit the file again if necessary\.$/);
    expect(await read('primes.py')).to.include('range(2, limit + 1):\n');
  });

  it('performs no replacement when old_str is missing or not unique, and says why', async () => {
    const before = await read('primes.py');
    const none = await run(editor({ command: 'str_replace', path: '/primes.py', old_str: 'def is_composite(n):', new_str: 'x' }));
    expect(none.isError).to.equal(true);
    expect(none.text).to.match(/^No replacement was performed, old_str `def is_composite\(n\):` did not appear verbatim in \/primes\.py\./);
    expect(none.text).to.include('1: "def is_prime(n):"');
    const many = await run(editor({ command: 'str_replace', path: '/primes.py', old_str: 'return False', new_str: 'return None' }));
    expect(many).to.include({
      text: 'No replacement was performed. Multiple occurrences of old_str `return False` in lines [4, 8, 12]. Please ensure it is unique',
      isError: true,
    });
    expect(await read('primes.py')).to.equal(before);
    const gone = await run(editor({ command: 'str_replace', path: '/nope.py', old_str: 'a', new_str: 'b' }));
    expect(gone).to.include({ text: 'The path /nope.py does not exist. Please provide a valid path.', isError: true });
  });

  it('inserts after a line, from insert_text and from new_str', async () => {
    const r = await run(editor({ command: 'insert', path: '/primes.py', insert_line: 0, insert_text: '"""Module for working with prime numbers."""\n' }));
    expect(r.isError, r.text).to.equal(false);
    expect(r.text).to.match(/^The file \/primes\.py has been edited\. Here's the result of running `cat -n` on a snippet of the edited file:\n/);
    expect(r.text).to.include('     1\t"""Module for working with prime numbers."""\n     2\tdef is_prime(n):');
    expect(r.text).to.match(/\(correct indentation, no duplicate lines, etc\)\. Edit the file again if necessary\.$/);
    const old = await run(editor({ command: 'insert', path: '/primes.py', insert_line: 2, new_str: '    # n is an int' }));
    expect(old.isError, old.text).to.equal(false);
    expect((await read('primes.py')).split('\n').slice(0, 4)).to.deep.equal([
      '"""Module for working with prime numbers."""',
      'def is_prime(n):',
      '    # n is an int',
      '    """Check if a number is prime."""',
    ]);
    const past = await run(editor({ command: 'insert', path: '/primes.py', insert_line: 500, insert_text: 'x' }));
    expect(past).to.include({ text: 'Invalid `insert_line` parameter: 500. It should be within the range of lines of the file: [0, 23]', isError: true });
  });

  it('refuses hostile paths as an error the model reads, and writes nothing outside', async () => {
    for (const path of ['/../outside.txt', '../../etc/passwd', '/src/../../x', `${root}/../escape.txt`, '/out-link/passwd']) {
      for (const input of [
        { command: 'view', path },
        { command: 'create', path, file_text: 'owned' },
      ]) {
        const r = await run(editor(input));
        expect(r.isError, `${input.command} ${path}`).to.equal(true);
        expect(r.text, path).to.match(/^The path .* is outside the project: /);
      }
    }
    const outside = await s.api('/execute', { project_id: 'demo', command: 'ls .. | grep -c -e outside.txt -e escape.txt || true' });
    expect(outside.body.stdout.trim()).to.equal('0');
  });

  it('answers an unknown command as an error, and a request it cannot take as an HTTP error', async () => {
    const undo = await run(editor({ command: 'undo_edit', path: '/primes.py' }));
    expect(undo.isError).to.equal(true);
    expect(undo.text).to.include('The allowed commands for the str_replace_based_edit_tool tool are: view, create, str_replace, insert');
    const other = await s.api('/anthropic/tool_use', { project_id: 'demo', block: toolUse('computer', { action: 'screenshot' }) });
    expect(other.status).to.equal(400);
    expect(other.body.error.message).to.include('POST /tools/{name}/call?format=anthropic');
    const notUse = await s.api('/anthropic/tool_use', { project_id: 'demo', block: { type: 'text', text: 'hi' } });
    expect(notUse.status).to.equal(400);
    const noProject = await s.api('/anthropic/tool_use', { project_id: 'nope', block: editor({ command: 'view', path: '/' }) });
    expect(noProject.status).to.equal(404);
    expect(noProject.body.error.code).to.equal('project_not_found');
    const missing = await s.api('/anthropic/tool_use', { block: editor({ command: 'view', path: '/' }) });
    expect(missing.status).to.equal(400);
  });
});

describe('Anthropic built-in tools: bash on a persistent session', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({});
    const files = {
      'src/app.ts': 'export {};\n',
      // A virtualenv's activate script, as `python3 -m venv` writes its essentials: it puts its bin first on PATH.
      '.venv/bin/activate': 'VIRTUAL_ENV="$(cd "$(dirname "$BASH_SOURCE")/.." && pwd)"\nexport VIRTUAL_ENV\nexport PATH="$VIRTUAL_ENV/bin:$PATH"\n',
      '.venv/bin/tool-from-venv': '#!/bin/sh\necho "venv tool ran"\n',
    };
    expect((await s.putProject('demo', files)).status).to.equal(201);
    expect((await s.api('/execute', { project_id: 'demo', command: 'chmod +x .venv/bin/tool-from-venv' })).body.exit_code).to.equal(0);
  });
  after(async () => s?.close({ force: true }));

  async function bash(input: Record<string, unknown>, session?: string): Promise<{ text: string; isError: boolean }> {
    const block = toolUse('bash', input);
    const r = await s.api('/anthropic/tool_use', { project_id: 'demo', block: blockOf(block), ...(session ? { session } : {}) });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    const result = r.body as AnthropicToolResultBlock;
    expect(resultParam(result).tool_use_id).to.equal(block.id);
    return { text: result.content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('\n'), isError: result.is_error };
  }

  it('keeps the working directory, exported variables and an activated virtualenv between calls', async () => {
    expect(await bash({ command: 'cd src && export GREETING=hello && source ../.venv/bin/activate' })).to.deep.equal({ text: '(no output)', isError: false });
    const later = await bash({ command: 'pwd; echo "$GREETING"; tool-from-venv' });
    expect(later.isError).to.equal(false);
    const [pwd, greeting, venv] = later.text.split('\n');
    expect(pwd).to.match(/\/src$/);
    expect([greeting, venv]).to.deep.equal(['hello', 'venv tool ran']);
  });

  it('shows stderr and a non-zero exit code without calling it an error', async () => {
    const r = await bash({ command: 'echo out; echo oops >&2; false' });
    expect(r).to.deep.equal({ text: 'out\n--- stderr ---\noops\n[exit code 1]', isError: false });
  });

  it('keeps sessions apart by key', async () => {
    await bash({ command: 'export ONLY_HERE=1' }, 'agent-2');
    expect((await bash({ command: 'echo "[$ONLY_HERE]"' })).text).to.equal('[]');
    expect((await bash({ command: 'echo "[$ONLY_HERE]"' }, 'agent-2')).text).to.equal('[1]');
  });

  it('restarts the shell when asked, back at the project root with a fresh environment', async () => {
    await bash({ command: 'cd src && export GONE=1' }, 'restart-me');
    expect(await bash({ restart: true }, 'restart-me')).to.deep.equal({ text: 'tool has been restarted.', isError: false });
    const after = await bash({ command: 'pwd; echo "[$GONE]"' }, 'restart-me');
    expect(after.text.split('\n')[1]).to.equal('[]');
    expect(after.text.split('\n')[0]).to.not.match(/\/src$/);
  });

  it('says when a command ended the shell, and that its state is gone', async () => {
    await bash({ command: 'export WAS=1' }, 'exiting');
    const r = await bash({ command: 'exit 3' }, 'exiting');
    expect(r.text).to.include('restarted');
    expect((await bash({ command: 'echo "[$WAS]"' }, 'exiting')).text).to.equal('[]');
  });

  it('answers a call without command or restart as an error', async () => {
    expect(await bash({})).to.deep.equal({ text: 'no command provided.', isError: true });
  });
});

describe('Anthropic built-in tools: bash commands that outlast the wait or the timeout', () => {
  async function bash(s: TestServer, command: string): Promise<{ text: string; isError: boolean }> {
    const r = await s.api('/anthropic/tool_use', { project_id: 'demo', block: blockOf(toolUse('bash', { command })) });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    const result = r.body as AnthropicToolResultBlock;
    return { text: result.content.flatMap((c) => (c.type === 'text' ? [c.text] : [])).join('\n'), isError: result.is_error };
  }

  it('answers a command still running after the wait with its job id, which job_status follows', async () => {
    const s = await startServer({ commands: { defaultWaitS: 1 } });
    try {
      expect((await s.putProject('demo', { 'a.txt': 'a\n' })).status).to.equal(201);
      const r = await bash(s, 'echo started; sleep 3; echo finished');
      expect(r.isError).to.equal(false);
      const jobId = /as job ([0-9a-f-]{36}): this shell is busy until it ends; follow it with job_status/.exec(r.text)?.[1];
      expect(jobId, r.text).to.be.a('string');
      let view = (await s.api(`/jobs/${jobId}?wait_s=10`)).body;
      let out = view.stdout as string;
      for (let k = 0; k < 20 && view.status === 'running'; k++) {
        view = (await s.api(`/jobs/${jobId}?wait_s=10&stdout_offset=${view.stdout_offset}&stderr_offset=${view.stderr_offset}`)).body;
        out += view.stdout;
      }
      expect(view.status).to.equal('completed');
      expect(out).to.equal('started\nfinished\n');
      expect((await bash(s, 'echo next')).text).to.equal('next');
    } finally {
      await s.close({ force: true });
    }
  });

  it('answers a command that timed out as an error', async () => {
    const s = await startServer({ commands: { defaultTimeoutS: 1 } });
    try {
      expect((await s.putProject('demo', { 'a.txt': 'a\n' })).status).to.equal(201);
      const r = await bash(s, 'echo started; sleep 30');
      expect(r.isError).to.equal(true);
      expect(r.text)
        .to.match(/^started\n/)
        .and.match(/\[timed out after [\d.]+ s: the command's processes were killed/);
    } finally {
      await s.close({ force: true });
    }
  });
});
