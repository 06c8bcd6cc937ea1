/**
 * A client generated from the served /openapi.json is typed: openapi-typescript turns the document into a .d.ts,
 * and a small client that reads `content` from a file read and `exit_code` from a command compiles against it
 * (tsc, strict, as a real process), while the same client with a wrong type for either field does not, so the
 * answers are typed from the response schemas, not left as unknown.
 */
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import openapiTS, { astToString } from 'openapi-typescript';
import { startServer, type TestServer, tempDir } from './helpers/harness.js';

const run = promisify(execFile);
const TSC = new URL('../node_modules/typescript/bin/tsc', import.meta.url).pathname;

/** Exactly the same type (not merely assignable: unknown, any and never fail). */
const CLIENT = (contentType: string, exitType: string) => `
import type { paths } from './api.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Json<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { responses: { 200: { content: { 'application/json': infer R } } } } ? R : never;

type Read = Json<'/file/read', 'post'>;
type Executed = Json<'/execute', 'post'>;
type Call = Json<'/tools/{name}/call', 'post'>;

export function contentOf(read: Read): string | undefined {
  if (!('content' in read)) return undefined; // an image answer has no text content
  const typed: Equal<typeof read.content, ${contentType}> = true;
  return typed ? read.content : undefined;
}

export function exitCodeOf(executed: Executed): number | null {
  const typed: Equal<Executed['exit_code'], ${exitType}> = true;
  return typed ? executed.exit_code : null;
}

export function isError(result: Call): boolean {
  return result.is_error;
}
`;

describe('a client generated from /openapi.json', () => {
  let s: TestServer;
  let dir: string;
  before(async () => {
    s = await startServer({});
    dir = await tempDir('toolhost-openapi-client-');
    const doc = (await s.api('/openapi.json')).body;
    await writeFile(join(dir, 'api.d.ts'), astToString(await openapiTS(doc)));
    const compilerOptions = {
      strict: true,
      noImplicitAny: true,
      noEmit: true,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      skipLibCheck: false,
    };
    await writeFile(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['client.ts'] }));
    await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  });
  after(async () => {
    await s?.close({ force: true });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const tsc = async (client: string): Promise<{ ok: boolean; out: string }> => {
    await writeFile(join(dir, 'client.ts'), client);
    try {
      await run(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json')], { timeout: 120_000 });
      return { ok: true, out: '' };
    } catch (err) {
      return { ok: false, out: String((err as { stdout?: string }).stdout ?? err) };
    }
  };

  it("types a file read's content as string and a command's exit_code as number | null", async () => {
    const good = await tsc(CLIENT('string', 'number | null'));
    expect(good.ok, good.out).to.equal(true);
  });

  it('fails to compile when a field has another type (the check can fail)', async () => {
    const wrongContent = await tsc(CLIENT('number', 'number | null'));
    expect(wrongContent.ok).to.equal(false);
    expect(wrongContent.out).to.include('client.ts');
    const untypedExit = await tsc(CLIENT('string', 'unknown'));
    expect(untypedExit.ok).to.equal(false);
  });
});
