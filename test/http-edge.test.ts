// The REST edge over real HTTP, for everything that needs no running stream: health, errors,
// validation before anything starts, the allow-list, auth, limits, object_info, OpenAPI, inspection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startEdge, type TestEdge } from './helpers/http-app.ts';

const SEED_BROKEN_BLUR = {
  '1': { inputs: { images: ['3', 0] }, class_type: 'SaveTensor' },
  '2': { inputs: {}, class_type: 'LoadTensor' },
  '3': { inputs: { image: ['2', 0], blur_radius: 5 }, class_type: 'ImageBlur' },
};

function startBody(over: Record<string, unknown> = {}, params: Record<string, unknown> = {}) {
  return {
    subscribe_url: 'http://127.0.0.1:3389/in',
    publish_url: 'http://127.0.0.1:3389/out',
    gateway_request_id: 'edge-test',
    params: { width: 512, height: 512, ...params },
    ...over,
  };
}

describe.each(['', '/live'])('HTTP edge without streams (prefix "%s")', (prefix) => {
  let edge: TestEdge;
  beforeAll(async () => {
    edge = await startEdge();
  });
  afterAll(async () => edge.close());

  it('answers /health with the documented shape', async () => {
    const r = await call(edge.origin, 'GET', `${prefix}/health`);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: 'healthy', service: 'trickle-stream-processor', version: expect.any(String), stream_manager_ready: true });
  });

  it('refuses the seed\'s broken ImageBlur prompt with 400 and validation_errors, creating nothing', async () => {
    const r = await call(edge.origin, 'POST', `${prefix}/stream/start`, startBody({}, { prompt: JSON.stringify(SEED_BROKEN_BLUR) }));
    expect(r.status).toBe(400);
    expect(r.json.error).toBe('Prompt validation failed');
    expect(r.json.message).toBe('The provided prompt references models or values that are not available in this ComfyUI workspace');
    expect(r.json.validation_errors).toContainEqual(
      expect.objectContaining({ node_id: '3', node_type: 'ImageBlur', error_type: 'required_input_missing', input_name: 'sigma' }),
    );
    expect(await edge.runtime.listStreams()).toEqual([]);
    expect(edge.runtime.inspectActors()).toEqual([]);
    expect(edge.runtime.processes({ spares: true })).toEqual([]);
  });

  it('refuses a value out of range with value_bigger_than_max', async () => {
    const prompt = { ...SEED_BROKEN_BLUR, '3': { inputs: { image: ['2', 0], blur_radius: 50, sigma: 1 }, class_type: 'ImageBlur' } };
    const r = await call(edge.origin, 'POST', `${prefix}/stream`, startBody({}, { prompts: [prompt] }));
    expect(r.status).toBe(400);
    expect(r.json.validation_errors[0]).toMatchObject({ error_type: 'value_bigger_than_max', input_name: 'blur_radius', received_value: 50 });
  });

  it('answers 400 naming the field for a missing URL, an odd width, a too-large height and a bad id', async () => {
    const missing = await call(edge.origin, 'POST', `${prefix}/stream/start`, { publish_url: 'http://127.0.0.1:1/o', gateway_request_id: 'x' });
    expect(missing.status).toBe(400);
    expect(missing.json.message).toContain('subscribe_url');
    const odd = await call(edge.origin, 'POST', `${prefix}/stream/start`, startBody({}, { width: 511 }));
    expect(odd.status).toBe(400);
    expect(odd.json.message).toContain('width');
    const big = await call(edge.origin, 'POST', `${prefix}/stream/start`, startBody({}, { height: 4096 }));
    expect(big.status).toBe(400);
    expect(big.json.message).toContain('height');
    const badId = await call(edge.origin, 'POST', `${prefix}/stream/start`, startBody({ gateway_request_id: 'a.b*c' }));
    expect(badId.status).toBe(400);
    expect(badId.json.message).toContain('gateway_request_id');
    const longId = await call(edge.origin, 'POST', `${prefix}/stream/start`, startBody({ gateway_request_id: 'x'.repeat(500) }));
    expect(longId.status).toBe(400);
    const noId = await call(edge.origin, 'POST', `${prefix}/stream/start`, startBody({ gateway_request_id: undefined }));
    expect(noId.status).toBe(400);
    expect(noId.json.message).toContain('gateway_request_id');
  });

  it('answers 400 for malformed JSON and 415 for a body that is not JSON', async () => {
    const bad = await call(edge.origin, 'POST', `${prefix}/stream/start`, '{"subscribe_url": ', { 'content-type': 'application/json' });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: 'Bad Request' });
    const text = await call(edge.origin, 'POST', `${prefix}/stream/start`, 'hello', { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
  });

  it('refuses stream URLs outside the allow-list with 403 before connecting anywhere', async () => {
    const r = await call(edge.origin, 'POST', `${prefix}/stream/start`, startBody({ subscribe_url: 'http://example.com:3389/in' }));
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ error: 'Forbidden', field: 'subscribe_url' });
    const ctl = await call(edge.origin, 'POST', `${prefix}/stream/start`, startBody({ control_url: 'http://169.254.169.254/latest' }));
    expect(ctl.status).toBe(403);
    expect(await edge.runtime.listStreams()).toEqual([]);
  });

  it('answers 404 JSON for unknown streams on every stream route', async () => {
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/stream/nope'],
      ['GET', '/stream/nope/status'],
      ['DELETE', '/stream/nope'],
      ['POST', '/stream/nope/stop'],
      ['POST', '/stream/nope/update-prompts', { prompts: [SEED_BROKEN_BLUR] }],
      ['GET', '/stream/nope/worker'],
      ['GET', '/stream/nope/workers'],
      ['POST', '/stream/nope/restart-worker'],
      ['POST', '/stream/nope/restart-workers'],
      ['POST', '/stream/nope/switch-prompt', { prompt_id: 'abc' }],
      ['GET', '/stream/nope/prompts'],
      ['GET', '/stream/nope/workspace-info'],
    ];
    for (const [method, path, body] of routes) {
      const r = await call(edge.origin, method, prefix + path, body);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.json, `${method} ${path}`).toMatchObject({ error: 'Not Found', message: expect.stringContaining('nope') });
    }
  });

  it('lists no streams, reports the global status, and answers 404 to stop-all with nothing running', async () => {
    expect((await call(edge.origin, 'GET', `${prefix}/streams`)).json).toEqual({ streams: {}, count: 0 });
    expect((await call(edge.origin, 'GET', `${prefix}/stream/status`)).json).toEqual({
      processing_active: false,
      stream_count: 0,
      current_stream: null,
      all_streams: {},
    });
    const stop = await call(edge.origin, 'POST', `${prefix}/stream/stop`);
    expect(stop.status).toBe(404);
  });

  it('answers 400 to update-prompts without prompt or prompts', async () => {
    const r = await call(edge.origin, 'POST', `${prefix}/stream/any/update-prompts`, { parameters: { width: 512 } });
    expect(r.status).toBe(400);
    expect(r.json.message).toMatch(/prompt/);
  });

  it('answers unknown routes with 404 JSON and wrong methods with 405 and Allow', async () => {
    const nf = await call(edge.origin, 'GET', `${prefix}/no/such/route`);
    expect(nf.status).toBe(404);
    expect(nf.json).toMatchObject({ error: 'Not Found' });
    const wm = await call(edge.origin, 'PUT', `${prefix}/stream/start`);
    expect(wm.status).toBe(405);
    expect(wm.headers.get('allow')).toContain('POST');
    expect(wm.json).toMatchObject({ error: 'Method Not Allowed' });
  });
});

describe('HTTP edge: catalogue, docs, probes and inspection', () => {
  let edge: TestEdge;
  beforeAll(async () => {
    edge = await startEdge();
  });
  afterAll(async () => edge.close());

  it('serves /object_info as ComfyUI does, and one class at /object_info/{class}', async () => {
    const all = await call(edge.origin, 'GET', '/object_info');
    expect(all.status).toBe(200);
    expect(all.json.ImageBlur.input.required.blur_radius).toEqual(['INT', expect.objectContaining({ default: 1, min: 1, max: 31 })]);
    expect(all.json.OnnxModel.input.required.model_name[0]).toContain('ppocr_v4_det.onnx');
    const one = await call(edge.origin, 'GET', '/object_info/ImageInvert');
    expect(Object.keys(one.json)).toEqual(['ImageInvert']);
    expect((await call(edge.origin, 'GET', '/object_info/NoSuchNode')).status).toBe(404);
  });

  it('serves the OpenAPI document with both prefixes, and its UI', async () => {
    const doc = await call(edge.origin, 'GET', '/docs/json');
    expect(doc.status).toBe(200);
    expect(doc.json.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.json.paths)).toEqual(expect.arrayContaining(['/stream/start', '/live/stream/start', '/stream/{id}/update-prompts']));
    const ui = await fetch(edge.origin + '/docs');
    expect(ui.status).toBeLessThan(400);
    await ui.arrayBuffer();
  });

  it('answers /livez and /readyz', async () => {
    expect((await call(edge.origin, 'GET', '/livez')).json).toEqual({ status: 'ok' });
    const ready = await call(edge.origin, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toMatchObject({ ready: true, running: 0 });
  });

  it('serves machine definitions for the visualizer and 404 for unknown ones', async () => {
    const m = await call(edge.origin, 'GET', '/inspect/machines/stream');
    expect(m.status).toBe(200);
    expect(Object.keys(m.json.states)).toEqual(expect.arrayContaining(['active', 'terminated', 'failed']));
    expect(Object.keys(m.json.states.active.states)).toEqual(['spawning', 'warmup', 'running', 'restarting', 'draining']);
    expect((await call(edge.origin, 'GET', '/inspect/machines/worker')).status).toBe(200);
    expect((await call(edge.origin, 'GET', '/inspect/machines/nope')).status).toBe(404);
    expect((await call(edge.origin, 'GET', '/inspect/actors')).json).toEqual({ actors: [], count: 0 });
  });

  it('serves Prometheus metrics', async () => {
    const r = await call(edge.origin, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/plain');
    expect(r.text).toContain('sf_http_request_duration_seconds');
    expect(r.text).toContain('sf_streams');
  });

  it('answers 413 to a body over the limit', async () => {
    const huge = JSON.stringify(startBody({}, { prompt: 'x'.repeat(2 * 1024 * 1024) }));
    const r = await call(edge.origin, 'POST', '/stream/start', huge);
    expect(r.status).toBe(413);
    expect(r.json).toMatchObject({ error: 'Payload Too Large' });
  });
});

describe('HTTP edge limits', () => {
  let edge: TestEdge;
  beforeAll(async () => {
    edge = await startEdge({ inference: { maxPromptNodes: 3, maxPrompts: 2 } });
  });
  afterAll(async () => edge.close());

  it('refuses a prompt with more nodes than inference.maxPromptNodes, and more prompts than inference.maxPrompts', async () => {
    const big = {
      ...SEED_BROKEN_BLUR,
      '3': { inputs: { image: ['4', 0] }, class_type: 'ImageInvert' },
      '4': { inputs: { image: ['2', 0] }, class_type: 'ImageInvert' },
    };
    const r = await call(edge.origin, 'POST', '/stream/start', startBody({}, { prompts: [big] }));
    expect(r.status).toBe(400);
    expect(r.json.validation_errors[0]).toMatchObject({ error_type: 'invalid_prompt', message: 'Prompt has too many nodes' });
    const three = [SEED_BROKEN_BLUR, SEED_BROKEN_BLUR, SEED_BROKEN_BLUR];
    const many = await call(edge.origin, 'POST', '/stream/start', startBody({}, { prompts: three }));
    expect(many.status).toBe(400);
    expect(many.json.message).toContain('Too many prompts');
    expect(await edge.runtime.listStreams()).toEqual([]);
  });
});

describe('HTTP edge with a bearer token', () => {
  let edge: TestEdge;
  beforeAll(async () => {
    edge = await startEdge({ http: { authToken: 's3cret' } });
  });
  afterAll(async () => edge.close());

  it('answers 401 without the token or with a wrong one, and serves with it', async () => {
    expect((await call(edge.origin, 'GET', '/health')).status).toBe(401);
    expect((await call(edge.origin, 'GET', '/streams', undefined, { authorization: 'Bearer nope' })).status).toBe(401);
    const ok = await call(edge.origin, 'GET', '/streams', undefined, { authorization: 'Bearer s3cret' });
    expect(ok.status).toBe(200);
    const r = await call(edge.origin, 'POST', '/live/stream/start', startBody());
    expect(r.status).toBe(401);
    expect(r.json).toMatchObject({ error: 'Unauthorized' });
  });

  it('leaves /livez and /readyz open', async () => {
    expect((await call(edge.origin, 'GET', '/livez')).status).toBe(200);
    expect((await call(edge.origin, 'GET', '/readyz')).status).toBe(200);
  });
});
