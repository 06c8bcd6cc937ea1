/**
 * POST /tools/{name}/call: a model's tool call run as is, answered with the tool result a client appends to the
 * conversation, in each provider's shape; a failed call is a result the model reads (200, is_error), and only a
 * request the endpoint cannot take is an HTTP error.
 */
import { expect } from 'chai';
import { TOOL_RESULT_SCHEMAS } from '../lib/tool-results.js';
import { startServer, type TestServer } from './helpers/harness.js';
import { DEMO_FILES } from './helpers/tool-calls.js';

/** A 1x1 PNG. */
const PIXEL = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

describe('POST /tools/{name}/call', () => {
  let s: TestServer;
  const call = (name: string, format: string, args: unknown) => s.api(`/tools/${name}/call?format=${format}`, args);
  const fits = (format: keyof typeof TOOL_RESULT_SCHEMAS, body: unknown): void => {
    const parsed = TOOL_RESULT_SCHEMAS[format].safeParse(body);
    expect(parsed.success, `${format}: ${JSON.stringify(parsed.error?.issues)}`).to.equal(true);
  };

  before(async () => {
    s = await startServer({ token: 'call-token-0123456789abcdef' });
    expect((await s.putProject('demo', DEMO_FILES)).status).to.equal(201);
    const png = await s.api('/execute', { project_id: 'demo', command: `echo ${PIXEL} | base64 -d > pixel.png` });
    expect(png.body.exit_code).to.equal(0);
  });
  after(async () => s?.close({ force: true }));

  it("answers the tool's model text in each format", async () => {
    const args = { project_id: 'demo', path: 'README.md' };
    const openai = await call('file_read', 'openai', args);
    expect(openai.status).to.equal(200);
    fits('openai', openai.body);
    expect(openai.body.is_error).to.equal(false);
    expect(openai.body.content).to.include('# demo');
    expect(openai.body).not.to.have.property('user_message');

    const responses = await call('file_read', 'openai-responses', args);
    fits('openai-responses', responses.body);
    expect(responses.body.output).to.equal(openai.body.content);

    const anthropic = await call('file_read', 'anthropic', args);
    fits('anthropic', anthropic.body);
    expect(anthropic.body).to.deep.equal({ content: [{ type: 'text', text: openai.body.content }], is_error: false });

    const text = await call('file_read', 'text', args);
    fits('text', text.body);
    expect(text.body).to.deep.equal({ text: openai.body.content, is_error: false });
    expect((await call('file_read', '', args)).status, 'an empty format is not a format').to.equal(400);
    expect((await s.api('/tools/file_read/call', args)).body, 'openai is the default').to.deep.equal(openai.body);
  });

  it('carries an image in each format the way that API takes one', async () => {
    const args = { project_id: 'demo', path: 'pixel.png' };
    const anthropic = await call('file_read', 'anthropic', args);
    fits('anthropic', anthropic.body);
    expect(anthropic.body.content[0]).to.deep.equal({ type: 'image', source: { type: 'base64', media_type: 'image/png', data: PIXEL } });
    expect(anthropic.body.content[1].text).to.include('pixel.png');

    const responses = await call('file_read', 'openai-responses', args);
    fits('openai-responses', responses.body);
    expect(responses.body.output[0]).to.deep.equal({ type: 'input_image', image_url: `data:image/png;base64,${PIXEL}` });

    const chat = await call('file_read', 'openai', args);
    fits('openai', chat.body);
    expect(chat.body.content).to.include('in the user message that follows').and.not.include(PIXEL);
    expect(chat.body.user_message.role).to.equal('user');
    expect(chat.body.user_message.content[1]).to.deep.equal({ type: 'image_url', image_url: { url: `data:image/png;base64,${PIXEL}` } });

    const text = await call('file_read', 'text', args);
    expect(text.body.text).to.include('image/png image').and.not.include(PIXEL);
  });

  it('answers a failed call with 200, is_error and the error body the model reads', async () => {
    const missing = await call('file_read', 'anthropic', { project_id: 'demo', path: 'nope.txt' });
    expect(missing.status).to.equal(200);
    fits('anthropic', missing.body);
    expect(missing.body.is_error).to.equal(true);
    expect(JSON.parse(missing.body.content[0].text).error.code).to.equal('file_not_found');

    // Arguments the model got wrong are the model's to fix: a result, not an HTTP error.
    const unknown = await call('file_read', 'openai', { project_id: 'demo', path: 'README.md', colour: 'red' });
    expect(unknown.status).to.equal(200);
    expect(unknown.body.is_error).to.equal(true);
    expect(JSON.parse(unknown.body.content).error).to.include({ code: 'unknown_field' });
    const notObject = await call('file_read', 'openai-responses', '[1,2]');
    expect(notObject.status).to.equal(200);
    expect(JSON.parse(notObject.body.output).error.code).to.equal('bad_request');

    // Hostile nesting (JSON.parse takes any depth): refused as bad arguments on every transport, never a stack overflow.
    const deep = `{"project_id":"demo","path":"README.md","edits":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const viaCall = await call('file_read', 'text', deep);
    expect(viaCall.status).to.equal(200);
    expect(JSON.parse(viaCall.body.text).error).to.include({ code: 'bad_request' });
    expect(JSON.parse(viaCall.body.text).error.message).to.include('deeper than 32 levels');
    const viaRoute = await s.api('/file/read', deep);
    expect(viaRoute.status).to.equal(400);
    expect(viaRoute.body.error.message).to.include('deeper than 32 levels');
  });

  it('refuses what the endpoint itself cannot take, saying what to do', async () => {
    const noTool = await call('rm_rf', 'openai', {});
    expect(noTool.status).to.equal(404);
    expect(noTool.body.error.message).to.include('GET /tools').and.include('file_read');
    const hostile = await call(encodeURIComponent('__proto__'), 'openai', {});
    expect(hostile.status).to.equal(404);
    const badFormat = await call('file_read', 'gemini', { project_id: 'demo', path: 'README.md' });
    expect(badFormat.status).to.equal(400);
    expect(badFormat.body.error.message).to.include('openai-responses').and.include('anthropic');
    const extra = await s.api('/tools/file_read/call?format=text&verbose=1', { project_id: 'demo', path: 'README.md' });
    expect(extra.status).to.equal(400);
    expect(extra.body.error.code).to.equal('unknown_field');
    const noToken = await s.api('/tools/file_read/call?format=text', { project_id: 'demo', path: 'README.md' }, { token: null });
    expect(noToken.status).to.equal(401);
    const notJson = await s.api('/tools/file_read/call?format=text', '{"project_id":', {});
    expect(notJson.status).to.equal(400);
    expect(notJson.body.error.code).to.equal('invalid_json');
    const plain = await s.api('/tools/file_read/call', 'project_id=demo', { headers: { 'content-type': 'text/plain' } });
    expect(plain.status).to.equal(415);
  });

  it('runs a command like its own route: a command still running answers its job_id to follow', async () => {
    const r = await call('execute', 'anthropic', { project_id: 'demo', command: 'sleep 5', wait_s: 0.2 });
    expect(r.status).to.equal(200);
    expect(r.body.is_error).to.equal(false);
    const text = r.body.content.map((c: { text: string }) => c.text).join('\n');
    const jobId = /job_id ([0-9a-f-]{36})/.exec(text)?.[1];
    expect(jobId, text).to.be.a('string');
    const cancelled = await call('job_cancel', 'text', { job_id: jobId });
    expect(cancelled.body.is_error, cancelled.body.text).to.equal(false);
  });
});
