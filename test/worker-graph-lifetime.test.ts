// How long an inference worker keeps replaced graphs: a real inference thread (onnxruntime, tsx in a
// worker_thread), real prompts. A size change retires the old graphs while frames of the old size
// are held, a same-size update lets a frame in flight finish on its graph, and nothing stays behind.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.ts';
import { rootLogger } from '../src/log.ts';
import { InferenceWorker } from '../src/inference/threads/inference-worker.ts';
import { InferenceThread } from '../src/inference/threads/inference-thread.ts';
import { WorkerError } from '../src/errors.ts';
import { tempDir } from './helpers/clips.ts';
import { identityPrompt, invertPrompt, entry } from './helpers/worker-proc.ts';

let dir: { path: string; remove(): void };
let thread: InferenceThread;

beforeAll(() => {
  dir = tempDir('sf-graph-life-');
  const inference = { ...defaultConfig.inference, workspace: join(dir.path, 'ws') };
  thread = new InferenceThread('t0', { config: inference, provider: inference.provider, logLevel: 'silent' }, rootLogger);
});

afterAll(async () => {
  await thread?.terminate();
  dir?.remove();
});

/** A frame of one grey level (RGB24). */
const frame = (w: number, h: number, v = 10): Uint8Array => new Uint8Array(w * h * 3).fill(v);

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err instanceof WorkerError ? err.code : `untyped: ${String(err)}`;
  }
}

describe('inference worker graph lifetime', () => {
  it('keeps the old-size graphs while that size is held, running the old prompt, then releases them', async () => {
    const w = new InferenceWorker('w0', thread, rootLogger);
    try {
      await w.load([entry('a', invertPrompt())], 64, 48);
      const release = w.hold(64, 48);
      // The update replaces prompt a by b and changes the size.
      await w.load([entry('b', identityPrompt())], 32, 24);
      expect(w.promptIds).toEqual(['b']);
      expect(w.generations).toBe(2);

      // A frame decoded at the old size runs on the old graph (a: inverted), routed as the new prompt.
      const old = await w.run('b', frame(64, 48), 64, 48);
      expect([old.width, old.height, old.data[0]]).toEqual([64, 48, 245]);
      // The new size runs on the new graph (b: as it came).
      const fresh = await w.run('b', frame(32, 24), 32, 24);
      expect([fresh.width, fresh.height, fresh.data[0]]).toEqual([32, 24, 10]);
      // Still held: frames of the old size may still come.
      expect(w.generations).toBe(2);

      release();
      release(); // idempotent
      expect(w.generations).toBe(1);
      expect(await code(w.run('b', frame(64, 48), 64, 48))).toBe('GRAPH_FAILED');
      expect(await code(w.run('a', frame(32, 24), 32, 24))).toBe('PROMPT_NOT_FOUND');
    } finally {
      await w.dispose();
    }
  });

  it('releases the old graphs at once when nothing holds their size', async () => {
    const w = new InferenceWorker('w1', thread, rootLogger);
    try {
      await w.load([entry('a', invertPrompt())], 64, 48);
      await w.load([entry('a', invertPrompt())], 32, 24);
      expect(w.generations).toBe(1);
      expect(await code(w.run('a', frame(64, 48), 64, 48))).toBe('GRAPH_FAILED');
    } finally {
      await w.dispose();
    }
  });

  it('keeps every held size through two size changes in a row', async () => {
    const w = new InferenceWorker('w2', thread, rootLogger);
    try {
      await w.load([entry('a', invertPrompt())], 64, 48);
      const r64 = w.hold(64, 48);
      await w.load([entry('b', identityPrompt())], 48, 36);
      const r48 = w.hold(48, 36);
      await w.load([entry('c', invertPrompt())], 32, 24);
      expect(w.generations).toBe(3);
      expect((await w.run('c', frame(64, 48), 64, 48)).data[0]).toBe(245);
      expect((await w.run('c', frame(48, 36), 48, 36)).data[0]).toBe(10);
      r64();
      expect(w.generations).toBe(2);
      expect((await w.run('c', frame(48, 36), 48, 36)).data[0]).toBe(10);
      r48();
      expect(w.generations).toBe(1);
    } finally {
      await w.dispose();
    }
  });

  it('lets a frame in flight finish on the graph a same-size update replaces', async () => {
    const w = new InferenceWorker('w3', thread, rootLogger);
    try {
      await w.load([entry('a', invertPrompt())], 64, 48);
      const inFlight = w.run('a', frame(64, 48), 64, 48);
      // Compiles in the same thread after the frame was handed over, then swaps: the old graph
      // is still running that frame and must not be released under it.
      const updated = w.load([entry('a', identityPrompt())], 64, 48);
      expect((await inFlight).data[0]).toBe(245);
      await updated;
      expect(w.generations).toBe(1);
      expect((await w.run('a', frame(64, 48), 64, 48)).data[0]).toBe(10);
    } finally {
      await w.dispose();
    }
  });

  it('releases a prepared update that is discarded, leaving the running graphs', async () => {
    const w = new InferenceWorker('w4', thread, rootLogger);
    try {
      await w.load([entry('a', invertPrompt())], 64, 48);
      const p = await w.prepare([entry('b', identityPrompt())], 32, 24);
      await p.discard();
      p.commit(); // settled: no effect
      expect(w.promptIds).toEqual(['a']);
      expect(w.generations).toBe(1);
      expect((await w.run('a', frame(64, 48), 64, 48)).data[0]).toBe(245);
    } finally {
      await w.dispose();
    }
  });
});
