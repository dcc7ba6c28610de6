// A command costs one bus round trip from the edge to the stream actor, and (where it changes the
// media path) one from the actor to the stream's process: counted on a real node's bus while real
// worker processes run, every request on the stream's and the process's command subjects.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_PROMPT } from '../src/inference/stream-prompts.ts';
import { api, startBody, startNode, type TestNode } from './helpers/runtime-node.ts';

/** The default prompt: the frame, inverted. */
const INVERT = DEFAULT_PROMPT;
const TWICE = {
  '1': { class_type: 'LoadTensor', inputs: {} },
  '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
  '3': { class_type: 'ImageInvert', inputs: { image: ['2', 0] } },
  '4': { class_type: 'SaveTensor', inputs: { images: ['3', 0] } },
};

let node: TestNode;

beforeAll(async () => {
  node = await startNode({ actors: { maxStreams: 2 } });
}, 60_000);

afterAll(async () => {
  const { orphans } = await node.close();
  expect(orphans).toEqual([]);
});

/** Requests (messages with a reply subject) seen on `sf.stream.*.cmd` and `sf.proc.*.cmd` while `f` runs. */
async function countRequests(f: () => Promise<unknown>): Promise<{ stream: string[]; proc: string[] }> {
  const seen = { stream: [] as string[], proc: [] as string[] };
  const sub = node.bus.subscribe('sf.>');
  const reading = (async () => {
    for await (const m of sub) {
      if (!m.reply) continue;
      const type = (() => {
        try {
          return String((m.json() as { type?: unknown }).type);
        } catch {
          return '?';
        }
      })();
      if (/^sf\.stream\.[^.]+\.cmd$/.test(m.subject)) seen.stream.push(type);
      else if (/^sf\.proc\.[^.]+\.cmd$/.test(m.subject)) seen.proc.push(type);
    }
  })();
  await node.bus.flush();
  try {
    await f();
  } finally {
    await node.bus.flush();
    sub.unsubscribe();
    await reading;
  }
  return seen;
}

describe('bus round trips per command', () => {
  it('update-prompts on a dedicated stream: one request to the stream actor, one to its process', async () => {
    const id = 'rt-dedicated';
    const start = await api(node.origin, 'POST', '/stream/start', startBody(node, { id, params: { prompt: INVERT } }));
    expect(start.status).toBe(200);

    const seen = await countRequests(async () => {
      const r = await api(node.origin, 'POST', `/stream/${id}/update-prompts`, { prompt: TWICE });
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ status: 'success', prompts_count: 1 });
    });
    expect(seen).toEqual({ stream: ['update_prompts'], proc: ['update_prompts'] });

    // A stop reaches the stream once (no status request first).
    const stop = await countRequests(async () => expect((await api(node.origin, 'DELETE', `/stream/${id}`)).status).toBe(200));
    expect(stop.stream).toEqual(['stop']);
    // With no pre-check, a stream no node has still answers 404 (nobody takes its command). Not
    // counted: a listener on its subject would be a responder.
    expect((await api(node.origin, 'POST', '/stream/nope/restart-worker')).status).toBe(404);
    expect((await api(node.origin, 'GET', '/stream/nope/workspace-info')).status).toBe(404);
    expect((await api(node.origin, 'POST', '/stream/nope/update-prompts', { prompt: INVERT })).status).toBe(404);
  }, 120_000);

  it('restart-worker on a shared stream is refused by the stream itself (one request, 400)', async () => {
    const id = 'rt-shared';
    expect((await api(node.origin, 'POST', '/stream/start', startBody(node, { id, params: { prompt: INVERT, dedicated_worker: false } }))).status).toBe(200);
    const seen = await countRequests(async () => {
      const r = await api(node.origin, 'POST', `/stream/${id}/restart-worker`);
      expect(r.status).toBe(400);
      expect(r.json.code).toBe('NOT_DEDICATED_WORKER');
      const s = await api(node.origin, 'POST', `/stream/${id}/switch-prompt`, { prompt_id: 'x' });
      expect(s.status).toBe(400);
      expect(s.json.code).toBe('NOT_PROMPT_WORKER');
    });
    expect(seen).toEqual({ stream: ['restart_worker', 'switch_prompt'], proc: [] });
    expect((await api(node.origin, 'DELETE', `/stream/${id}`)).status).toBe(200);
  }, 120_000);
});

describe('one validation per prompt', () => {
  it('a worker process never validates: the validator is not reachable from the worker entry', () => {
    const src = resolve(import.meta.dirname, '../src');
    const seen = new Set<string>();
    const walk = (file: string): void => {
      if (seen.has(file) || !existsSync(file)) return;
      seen.add(file);
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+\.ts)'/g)) walk(resolve(dirname(file), m[1]));
    };
    walk(resolve(src, 'runner/main.ts'));
    const reached = [...seen].map((f) => relative(src, f));
    expect(reached).toContain('runner/pipeline.ts');
    expect(reached).toContain('inference/compile.ts');
    expect(reached.filter((f) => f === 'inference/validate.ts' || f === 'inference/stream-prompts.ts')).toEqual([]);
  });
});
