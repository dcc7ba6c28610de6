// Run by free-buffer.test.ts in a process of its own (with and without the worker's V8 flags): compiles a prompt
// (a fused onnx stage, a host step, another onnx stage) and runs it many times into a caller's
// buffer, with no garbage collection able to free what onnxruntime answers; prints JSON figures.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { compileGraph, type CompiledGraph } from '../../src/inference/compile.ts';
import { SessionCache } from '../../src/inference/sessions.ts';
import type { ResolvedPrompt } from '../../src/inference/types.ts';

const W = 512;
const H = 512;
const RUNS = Number(process.argv[2] ?? 60);
const link = (node: string) => ({ node, slot: 0 });
const prompt: ResolvedPrompt = {
  id: 'frees',
  nodes: [
    { id: '1', classType: 'LoadTensor', inputs: {} },
    { id: '2', classType: 'ImageInvert', inputs: { image: link('1') } },
    { id: '3', classType: 'TestHoldFrame', inputs: { image: link('2'), hold_ms: 0 } },
    { id: '4', classType: 'ImageBlur', inputs: { image: link('3'), blur_radius: 1, sigma: 1 } },
    { id: 'out', classType: 'SaveTensor', inputs: { images: link('4') } },
  ],
  inputNode: '1',
  outputNode: 'out',
};
const ws = mkdtempSync(join(tmpdir(), 'sf-frees-'));
const cache = new SessionCache<CompiledGraph>(2);
try {
  const config = loadConfig({ inference: { warmupFrames: 0, testNodes: true } }).inference;
  const g = await compileGraph(prompt, { width: W, height: H, workspace: ws, config, cache });
  const rgb = new Uint8Array(W * H * 3).map((_, i) => (i * 13) & 255);
  const copy = rgb.slice();
  const out = new Uint8Array(W * H * 3);
  const first = await g.run(rgb, out);
  const firstBytes = first.data.slice();
  const ab0 = process.memoryUsage().arrayBuffers;
  let same = true;
  for (let i = 0; i < RUNS; i++) {
    const r = await g.run(rgb, out);
    if (r.data !== out || Buffer.compare(r.data, firstBytes) !== 0) same = false;
  }
  const grew = process.memoryUsage().arrayBuffers - ab0;
  // Without an `out` the caller owns what it gets: that buffer must survive.
  const owned = await g.run(rgb);
  const ownedOk = owned.data.byteLength === W * H * 3 && Buffer.compare(owned.data, firstBytes) === 0;
  console.log(JSON.stringify({ stages: g.stageKinds, grewBytes: grew, frameBytes: W * H * 3, same, inputIntact: Buffer.compare(rgb, copy) === 0, ownedOk }));
  await g.dispose();
} finally {
  await cache.clear();
  rmSync(ws, { recursive: true, force: true });
}
