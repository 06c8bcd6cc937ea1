/**
 * A project's files through MCP, with the real SDK client: as resources of the template
 * toolhost://{project_id}/{path} (text, images, and hostile URIs that must never read outside the project), and
 * file_read's images as MCP ImageContent.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { expect } from 'chai';
import { startServer, type TestServer } from './helpers/harness.js';
import { mcpClient, resultText, type ToolResult } from './helpers/mcp-client.js';

/** A 1x1 png. */
const PIXEL_PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const APP = 'export const port = 3000;\n';

describe('MCP: files as resources and images', () => {
  let s: TestServer;
  let client: Client;

  before(async () => {
    s = await startServer();
    const files = { 'src/app.ts': APP, 'docs/a b#?.md': '# odd name\n' };
    expect((await s.putProject('res', files)).status).to.equal(201);
    // Binary bytes and links out of the project go in through a command: the archive helper writes text, and an
    // upload refuses links that leave the project.
    const command = `echo '${PIXEL_PNG}' | base64 -d > pixel.png && ln -s /etc out && ln -s .. up`;
    const png = await s.api('/execute', { project_id: 'res', command });
    expect(png.body.exit_code, JSON.stringify(png.body)).to.equal(0);
    client = await mcpClient(s);
  });
  after(async () => {
    await client?.close();
    await s?.close({ force: true });
  });

  /** The error a resources/read of `uri` fails with (it must fail). */
  async function readError(uri: string): Promise<McpError> {
    try {
      const r = await client.readResource({ uri });
      throw new Error(`${uri} was read: ${JSON.stringify(r).slice(0, 300)}`);
    } catch (err) {
      if (!(err instanceof McpError)) throw err;
      return err;
    }
  }

  it('declares resources, advertises the file template and lists no resources', async () => {
    expect(client.getServerCapabilities()?.resources).to.be.an('object');
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).to.deep.equal(['toolhost://{project_id}/{path}']);
    expect(resourceTemplates[0]!.description).to.be.a('string');
    expect((await client.listResources()).resources).to.deep.equal([]);
  });

  it('reads a text file, with its slashes plain or percent-encoded, and an odd name percent-encoded', async () => {
    for (const uri of ['toolhost://res/src/app.ts', 'toolhost://res/src%2Fapp.ts']) {
      const { contents } = await client.readResource({ uri });
      expect(contents).to.deep.equal([{ uri, mimeType: 'text/x-typescript', text: APP }]);
    }
    const odd = `toolhost://res/${encodeURIComponent('docs/a b#?.md')}`;
    expect((await client.readResource({ uri: odd })).contents[0]).to.deep.include({ mimeType: 'text/markdown', text: '# odd name\n' });
  });

  it('reads an image as a blob', async () => {
    const { contents } = await client.readResource({ uri: 'toolhost://res/pixel.png' });
    expect(contents).to.deep.equal([{ uri: 'toolhost://res/pixel.png', mimeType: 'image/png', blob: PIXEL_PNG }]);
  });

  it('answers file_read of an image with MCP ImageContent', async () => {
    const r = (await client.callTool({ name: 'file_read', arguments: { project_id: 'res', path: 'pixel.png' } })) as ToolResult;
    expect(r.isError ?? false, resultText(r)).to.equal(false);
    expect(r.content.filter((c) => c.type === 'image')).to.deep.equal([{ type: 'image', data: PIXEL_PNG, mimeType: 'image/png' }]);
  });

  it('refuses hostile URIs with a clean error and never reads outside the project', async () => {
    const outside = [
      'toolhost://res/../../etc/passwd',
      'toolhost://res/..%2F..%2Fetc%2Fpasswd',
      'toolhost://res/%2E%2E/%2E%2E/etc/passwd',
      'toolhost://res//etc/passwd',
      'toolhost://res/%2Fetc%2Fpasswd',
      'toolhost://res/out/passwd',
      'toolhost://res/up/up/etc/passwd',
    ];
    for (const uri of outside) {
      const err = await readError(uri);
      expect(err.code, uri).to.equal(-32602);
      expect((err.data as any).error.code, uri).to.equal('path_outside_project');
      expect(err.message, uri).to.match(/^MCP error -32602: (?!MCP error)/);
      expect(err.message, uri).to.not.include('root:');
    }
    const malformed: [string, string][] = [
      ['toolhost://../etc/passwd', 'project_id'],
      ['toolhost://%2E%2E/etc/passwd', 'project_id'],
      ['toolhost://res%2F..%2Fother/x', 'project_id'],
      ['toolhost:///etc/passwd', 'names no file'],
      ['toolhost://res', 'names no file'],
      ['toolhost://res/', 'names no file'],
      ['file:///etc/passwd', 'not a toolhost URI'],
      ['toolhost://res/%E0%A4%A', 'percent-encoding'],
      ['toolhost://res/src/app.ts?x=1', 'query'],
      ['toolhost://res/a%00b', ''],
    ];
    for (const [uri, says] of malformed) {
      const err = await readError(uri);
      expect(err.code, uri).to.equal(-32602);
      expect(err.message, uri).to.include(says);
      expect((err.data as any).error.code, uri).to.be.oneOf(['bad_request', 'path_outside_project', 'file_not_found']);
    }
  });

  it('answers a missing file or project with "resource not found" (-32002) and says what to do', async () => {
    for (const [uri, code] of [
      ['toolhost://res/missing.txt', 'file_not_found'],
      ['toolhost://nope/src/app.ts', 'project_not_found'],
    ]) {
      const err = await readError(uri as string);
      expect(err.code, uri).to.equal(-32002);
      expect((err.data as any).error.code, uri).to.equal(code);
    }
    const dir = await readError('toolhost://res/src');
    expect((dir.data as any).error.code).to.equal('is_a_directory');
  });
});
