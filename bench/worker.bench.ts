// `npm run bench worker`: what running a worker's graph in its own inference thread costs per frame,
// against running it on the worker's main thread (the baseline, same run). Frames go to the thread
// by transferring their ArrayBuffer; the "copy" row hands over a view of a larger buffer, which must
// be copied first (what every frame would cost without transfer). Medians over many 512x512 frames
// of the invert prompt and of a 5x5 blur.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { compileGraph } from '../src/inference/compile.ts';
import { SessionCache } from '../src/inference/sessions.ts';
import type { ResolvedPrompt } from '../src/inference/types.ts';
import { validatePrompt } from '../src/inference/validate.ts';
import { InferenceThread } from '../src/inference/threads/inference-thread.ts';
import { rootLogger } from '../src/log.ts';

const W = 512;
const H = 512;
const FRAMES = 300;

function frame(seed: number): Uint8Array {
  const f = new Uint8Array(W * H * 3);
  for (let i = 0; i < f.length; i++) f[i] = (i * 7 + seed * 13) & 255;
  return f;
}

/** Median ms of `fn(setup(i))`; `setup` (making the frame) is not timed. */
async function median<T>(setup: (i: number) => T, fn: (x: T) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 10; i++) await fn(setup(i));
  const t: number[] = [];
  for (let i = 0; i < FRAMES; i++) {
    const x = setup(i);
    const s = performance.now();
    await fn(x);
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

function prompt(workspace: string, nodes: Array<{ class_type: string; inputs?: Record<string, unknown> }>): ResolvedPrompt {
  const p: Record<string, unknown> = { '1': { class_type: 'LoadTensor', inputs: {} } };
  let prev = '1';
  nodes.forEach((n, i) => {
    p[String(i + 2)] = { class_type: n.class_type, inputs: { ...(n.inputs ?? {}), image: [prev, 0] } };
    prev = String(i + 2);
  });
  p[String(nodes.length + 2)] = { class_type: 'SaveTensor', inputs: { images: [prev, 0] } };
  const r = validatePrompt(p, { workspace });
  if (!r.valid) throw new Error(r.error.message);
  return r.prompt;
}

export default {
  name: 'worker',
  async run(): Promise<void> {
    const workspace = mkdtempSync(join(tmpdir(), 'sf-bench-worker-'));
    const config = loadConfig({ inference: { workspace } });
    const thread = new InferenceThread('bench', { config: config.inference, provider: 'cpu', logLevel: 'silent' }, rootLogger);
    try {
      console.log(`| graph (${W}x${H}) | main thread ms | thread, transfer ms | ratio | thread, copy ms | ratio |`);
      console.log('|---|---|---|---|---|---|');
      for (const [name, nodes] of [
        ['ImageInvert', [{ class_type: 'ImageInvert' }]],
        ['ImageBlur r2', [{ class_type: 'ImageBlur', inputs: { blur_radius: 2, sigma: 1 } }]],
      ] as const) {
        const rp = prompt(workspace, [...nodes]);
        const g = await compileGraph(rp, { width: W, height: H, workspace, config: config.inference, cache: new SessionCache(2) });
        const inputs = [0, 1, 2, 3].map(frame);
        const base = await median((i) => inputs[i % 4], (f) => g.run(f));
        const h = await thread.compile(rp, W, H);
        // A transferred frame is detached after the call: each run gets a fresh copy (untimed),
        // as each decoded frame is a fresh buffer.
        const moved = await median((i) => inputs[i % 4].slice(), (f) => thread.run(h.handle, f));
        const big = new Uint8Array(W * H * 3 + 16);
        const copied = await median(() => big.subarray(8, 8 + W * H * 3), (f) => thread.run(h.handle, f));
        const r = (x: number): string => `${(x / base).toFixed(2)}x`;
        console.log(`| ${name} | ${base.toFixed(2)} | ${moved.toFixed(2)} | ${r(moved)} | ${copied.toFixed(2)} | ${r(copied)} |`);
        await thread.release(h.handle);
        await g.dispose();
      }
    } finally {
      await thread.terminate();
      rmSync(workspace, { recursive: true, force: true });
    }
  },
};
