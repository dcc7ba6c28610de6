// Answers that say exactly what happened, and control messages that cannot apply, tried from
// outside over real HTTP, real trickle and real worker processes: restart-worker answers once the
// new process runs; a second DELETE is a 404; a prompt the worker cannot compile is the request's
// fault (400); a control message that is not JSON, or a prompt on it that fails validation, is an
// error event on the stream's `-events` channel.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { simpleRequest } from '../src/transport/trickle/http-client.ts';
import { TricklePublisher, TrickleSubscriber } from '../src/transport/trickle/index.ts';
import { alive, api, startBody, startNode, type TestNode } from './helpers/runtime-node.ts';

let node: TestNode | undefined;
afterEach(async () => {
  if (!node) return;
  const { orphans } = await node.close();
  node = undefined;
  expect(orphans).toEqual([]);
});

const withModel = (model: string) => ({
  '1': { class_type: 'LoadTensor', inputs: {} },
  '2': { class_type: 'OnnxModel', inputs: { image: ['1', 0], model_name: model } },
  '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } },
});

describe('API answers', () => {
  it('restart-worker answers once the new worker process runs, and the old one is gone', async () => {
    node = await startNode();
    expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id: 'rw' }))).status).toBe(200);
    const oldPid = (await api(node.origin, 'GET', '/stream/rw')).json.worker_status.pid as number;
    const r = await api(node.origin, 'POST', '/stream/rw/restart-worker');
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    // At the moment of the answer: a new process, running, and the old one no longer alive.
    const st = (await api(node.origin, 'GET', '/stream/rw')).json;
    expect(st.worker_status.state).toBe('running');
    expect(st.worker_status.pid).not.toBe(oldPid);
    expect(alive(oldPid)).toBe(false);
  }, 60_000);

  it('a second DELETE of a stream answers 404, as the API doc says', async () => {
    node = await startNode();
    expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id: 'twice' }))).status).toBe(200);
    expect((await api(node.origin, 'DELETE', '/stream/twice')).status).toBe(200);
    const again = await api(node.origin, 'DELETE', '/stream/twice');
    expect(again.status).toBe(404);
    expect(again.json.code).toBe('STREAM_NOT_FOUND');
    expect((await api(node.origin, 'POST', '/stream/twice/stop')).status).toBe(404);
  }, 60_000);

  it('update-prompts with a prompt the worker cannot compile answers 400 with the error; the stream runs on', async () => {
    node = await startNode();
    // A file that is in the models folder (so validation passes) but is not an ONNX model.
    writeFileSync(join(node.config.inference.workspace, 'models', 'broken.onnx'), Buffer.from('not an onnx model'));
    expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id: 'bad' }))).status).toBe(200);
    const before = (await api(node.origin, 'GET', '/stream/bad')).json;
    const r = await api(node.origin, 'POST', '/stream/bad/update-prompts', { prompts: [withModel('broken.onnx')] });
    expect(r.status, JSON.stringify(r.json)).toBe(400);
    expect(r.json.code).toBe('PROMPT_REJECTED');
    expect(r.json.message).toMatch(/compil/i);
    const after = (await api(node.origin, 'GET', '/stream/bad')).json;
    expect(after.state).toBe('running');
    expect(after.prompt_ids).toEqual(before.prompt_ids);
    expect(after.worker_status.pid).toBe(before.worker_status.pid);
  }, 60_000);
});

describe('refusals that do not echo the request', () => {
  it('a path segment over the router limit answers 414 in our shape, without echoing the URL; a 404 repeats at most 100 characters and never the query', async () => {
    node = await startNode();
    const long = await api(node.origin, 'GET', `/stream/${'a'.repeat(5000)}?token=secret`);
    expect(long.status).toBe(414);
    expect(long.json.code).toBe('URI_TOO_LONG');
    expect(JSON.stringify(long.json)).not.toMatch(/aaaaaaaaaa|secret/);
    const unknown = await api(node.origin, 'GET', `/${'b'.repeat(5000)}?token=secret`);
    expect(unknown.status).toBe(404);
    expect(JSON.stringify(unknown.json).length).toBeLessThan(400);
    expect(JSON.stringify(unknown.json)).not.toMatch(/secret/);
  }, 30_000);
});

describe('control messages that cannot apply', () => {
  it('non-JSON and an invalid prompt on -control each give an error event on -events; nothing else changes', async () => {
    node = await startNode({ actors: { eventsIntervalMs: 60_000 } });
    const n = node;
    const events = new TrickleSubscriber(`${n.trickleBase}/ce-events`, { start: 0, waitForChannel: 60_000 });
    const got: Array<{ event: Record<string, unknown>; queue_event_type: string }> = [];
    const reading = (async () => {
      for await (const seg of events) got.push(JSON.parse((await seg.bytes()).toString()));
    })().catch(() => undefined);
    // As an orchestrator does, the control channel exists before the runner gets its URL.
    const created = await simpleRequest(`${n.trickleBase}/ce-control`, 'POST', { headerTimeoutMs: 5_000, headers: { 'expect-content': 'application/json' } });
    expect('status' in created && created.status).toBe(200);
    expect((await api(n.origin, 'POST', '/stream/start', startBody(n, { id: 'ce', control: true, events: true }))).status).toBe(200);
    const before = (await api(n.origin, 'GET', '/stream/ce')).json;
    const control = new TricklePublisher(`${n.trickleBase}/ce-control`, { contentType: 'application/json', deleteChannel: false });
    await control.writeSegment(Buffer.from('{ this is not json'));
    // ImageBlur without its required `sigma`: ComfyUI's validation names node 2.
    const blur = {
      '1': { class_type: 'LoadTensor', inputs: {} },
      '2': { class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 3 } },
      '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } },
    };
    await control.writeSegment(Buffer.from(JSON.stringify({ prompts: [blur] })));
    const errors = () => got.filter((g) => g.event.type === 'error');
    const deadline = Date.now() + 30_000;
    while (errors().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const [notJson, invalid] = errors().map((g) => g.event);
    expect(notJson, JSON.stringify(got)).toMatchObject({ type: 'error', stream_id: 'ce', error_type: 'control_message_rejected', reason: 'not_json' });
    expect(invalid, JSON.stringify(got)).toMatchObject({ type: 'error', stream_id: 'ce', error_type: 'control_prompt_invalid', code: 'PROMPT_INVALID' });
    expect(JSON.stringify(invalid)).toMatch(/sigma/);
    const after = (await api(n.origin, 'GET', '/stream/ce')).json;
    expect(after.state).toBe('running');
    expect(after.prompt_ids).toEqual(before.prompt_ids);
    expect(after.worker_status.pid).toBe(before.worker_status.pid);
    control.removeAllListeners();
    await control.close();
    events.close();
    await reading;
  }, 90_000);
});
