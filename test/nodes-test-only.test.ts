// Test-only node classes (TestHoldFrame) exist only with `inference.testNodes`: with the flag off
// (the default) validation refuses them as unknown classes, `/object_info` does not list them and
// the compiler cannot build them; with it on, TestHoldFrame gives the frame back unchanged.
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { objectInfo } from '../src/inference/object-info.ts';
import { createRegistry } from '../src/inference/registry.ts';
import { validatePrompt } from '../src/inference/validate.ts';
import { call, startEdge } from './helpers/http-app.ts';
import { graphRunner } from './helpers/graph-run.ts';
import * as ref from './helpers/image-ref.ts';

const HOLD_PROMPT = {
  '1': { class_type: 'LoadTensor', inputs: {} },
  '2': { class_type: 'TestHoldFrame', inputs: { image: ['1', 0], hold_ms: 5 } },
  '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } },
};

const off = graphRunner();
const on = graphRunner({ testNodes: true });
afterAll(async () => {
  await off.close();
  await on.close();
});

describe('test-only nodes', () => {
  it('are off by default in the configuration', () => {
    expect(loadConfig().inference.testNodes).toBe(false);
  });

  it('validation refuses TestHoldFrame unless inference.testNodes is on', () => {
    const r = validatePrompt(HOLD_PROMPT, { workspace: off.workspace });
    expect(r.valid).toBe(false);
    if (r.valid) return;
    expect(r.error).toMatchObject({ type: 'invalid_prompt', message: 'Cannot execute because node TestHoldFrame does not exist.' });
    expect(validatePrompt(HOLD_PROMPT, { workspace: off.workspace, testNodes: true }).valid).toBe(true);
    expect(Object.keys(objectInfo(createRegistry(off.workspace)))).not.toContain('TestHoldFrame');
    expect(objectInfo(createRegistry(off.workspace, { testNodes: true })).TestHoldFrame.input.required).toEqual({
      image: ['IMAGE'],
      hold_ms: ['INT', expect.objectContaining({ min: 0, max: 10_000 })],
    });
  });

  it('/object_info and /stream/start follow the flag', async () => {
    const body = { subscribe_url: 'http://127.0.0.1:3389/in', publish_url: 'http://127.0.0.1:3389/out', gateway_request_id: 'hold', params: { prompts: [HOLD_PROMPT] } };
    const plain = await startEdge();
    try {
      expect((await call(plain.origin, 'GET', '/object_info/TestHoldFrame')).status).toBe(404);
      expect(Object.keys((await call(plain.origin, 'GET', '/object_info')).json)).not.toContain('TestHoldFrame');
      const start = await call(plain.origin, 'POST', '/stream/start', body);
      expect(start.status).toBe(400);
      expect(JSON.stringify(start.json)).toContain('TestHoldFrame does not exist');
    } finally {
      await plain.close();
    }
    const testing = await startEdge({ inference: { testNodes: true } });
    try {
      expect(Object.keys((await call(testing.origin, 'GET', '/object_info/TestHoldFrame')).json)).toEqual(['TestHoldFrame']);
    } finally {
      await testing.close();
    }
  });

  it('the compiler builds TestHoldFrame only with the flag, and it passes the frame through unchanged', async () => {
    const p = ref.singleNodePrompt('hold', 'TestHoldFrame', { hold_ms: 5 });
    await expect(off.compile(p, 16, 8)).rejects.toMatchObject({ code: 'GRAPH_UNKNOWN_NODE' });
    const frame = ref.randomFrame(16, 8, 3);
    const out = await on.run(p, frame, 16, 8);
    expect([out.width, out.height]).toEqual([16, 8]);
    expect(Array.from(out.data)).toEqual(Array.from(frame));
  });
});
