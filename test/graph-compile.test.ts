// The graph compiler end to end on real onnxruntime: a prompt of image nodes fuses into ONE
// session and equals the composition of the plain-TS references; host steps split it correctly;
// the session cache returns the same compiled graph for the same prompt and size, evicts LRU,
// and frees what it evicts; OnnxModel runs a model written here into a temp workspace; bad
// prompts and bad frames fail with typed errors.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxPkg from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { compileGraph, type CompiledGraph } from '../src/inference/compile.ts';
import { GraphError } from '../src/inference/ops/errors.ts';
import { cudaAvailable, SessionCache } from '../src/inference/sessions.ts';
import type { ResolvedNode, ResolvedPrompt } from '../src/inference/types.ts';
import { loadConfig } from '../src/config.ts';
import * as ref from './helpers/image-ref.ts';
import { graphRunner } from './helpers/graph-run.ts';

const { onnx } = onnxPkg;
const link = ref.link;
const W = 40;
const H = 30;
const frame = ref.randomFrame(W, H, 21);
const img = ref.fromRgb(frame, W, H);
const runner = graphRunner();
afterAll(() => runner.close());

const prompt = (id: string, nodes: ResolvedNode[]): ResolvedPrompt => ({ id, nodes, inputNode: nodes[0].id, outputNode: nodes[nodes.length - 1].id });

const chain5 = (id = 'chain5') =>
  prompt(id, [
    { id: '1', classType: 'LoadTensor', inputs: {} },
    { id: '2', classType: 'ImageInvert', inputs: { image: link('1') } },
    { id: '3', classType: 'ImageBlur', inputs: { image: link('2'), blur_radius: 2, sigma: 1.5 } },
    { id: '4', classType: 'ImageSharpen', inputs: { image: link('3'), sharpen_radius: 1, sigma: 1, alpha: 0.4 } },
    { id: '5', classType: 'ImageBlend', inputs: { image1: link('4'), image2: link('1'), blend_factor: 0.6, blend_mode: 'overlay' } },
    { id: '6', classType: 'ImageScaleBy', inputs: { image: link('5'), upscale_method: 'bilinear', scale_by: 0.75 } },
    { id: '7', classType: 'SaveTensor', inputs: { images: link('6') } },
  ]);

describe('compiled prompt', () => {
  it('a 5-node chain is one session and equals the composition of the references (within 1 level)', async () => {
    const g = await runner.compile(chain5(), W, H);
    try {
      expect(g.stageCount).toBe(1);
      const out = await g.run(frame);
      const want = ref.upscale(ref.blend(ref.sharpen(ref.blur(ref.invert(img), 2, 1.5), 1, 1, 0.4), img, 0.6, 'overlay'), 30, 22, 'bilinear', 'disabled');
      expect([out.width, out.height]).toEqual([30, 22]);
      expect(ref.diffStats(out.data, ref.toRgb(want), 1).max).toBeLessThanOrEqual(1);
    } finally {
      await g.dispose();
    }
  });

  it('fuse: false gives one session per node and the same bytes as the fused graph', async () => {
    const cache = new SessionCache<CompiledGraph>(4);
    const config = loadConfig({ inference: { warmupFrames: 0 } }).inference;
    const fused = await compileGraph(chain5('fuse'), { width: W, height: H, workspace: runner.workspace, config, cache });
    const unfused = await compileGraph(chain5('fuse'), { width: W, height: H, workspace: runner.workspace, config, cache, fuse: false });
    expect(unfused).not.toBe(fused);
    expect(unfused.stageCount).toBe(7);
    const a = await fused.run(frame);
    const b = await unfused.run(frame);
    expect(ref.diffStats(a.data, b.data, 1).max).toBeLessThanOrEqual(1);
    await cache.clear();
  });

  it('a host step in the middle splits the graph and values cross it intact', async () => {
    // 12 colours on the 4-grid: quantize to 16 colours is the identity, so the reference is exact
    const pal = Array.from({ length: 12 }, (_, k) => [(k * 60) & 252, (k * 36 + 40) & 252, (200 - k * 16) & 252]);
    const few = new Uint8Array(W * H * 3);
    for (let i = 0; i < W * H; i++) few.set(pal[(i >> 3) % 12], i * 3);
    const p = prompt('split', [
      { id: 'a', classType: 'LoadTensor', inputs: {} },
      { id: 'b', classType: 'ImageInvert', inputs: { image: link('a') } },
      { id: 'c', classType: 'ImageQuantize', inputs: { image: link('b'), colors: 16, dither: 'none' } },
      { id: 'd', classType: 'ImageBlend', inputs: { image1: link('c'), image2: link('a'), blend_factor: 0.5, blend_mode: 'screen' } },
      { id: 'e', classType: 'SaveTensor', inputs: { images: link('d') } },
    ]);
    const g = await runner.compile(p, W, H);
    try {
      expect(g.stageKinds).toEqual(['onnx', 'host:c', 'onnx']);
      const out = await g.run(few);
      const fi = ref.fromRgb(few, W, H);
      const want = ref.toRgb(ref.blend(ref.invert(fi), fi, 0.5, 'screen'));
      expect(ref.diffStats(out.data, want, 1).max).toBeLessThanOrEqual(1);
    } finally {
      await g.dispose();
    }
  });

  it('runs many frames in order and gives each its own result', async () => {
    const g = await runner.compile(ref.singleNodePrompt('inv-many', 'ImageInvert', {}), W, H);
    try {
      const frames = [1, 2, 3, 4].map((s) => ref.randomFrame(W, H, s));
      const outs = await Promise.all(frames.map((f) => g.run(f)));
      outs.forEach((o, k) => expect(Array.from(o.data)).toEqual(Array.from(frames[k], (v) => 255 - v)));
      // a frame that is a view into a larger buffer (as decoders hand them out) reads the right bytes
      const big = Buffer.alloc(frames[0].length + 64);
      big.set(frames[0], 32);
      const view = big.subarray(32, 32 + frames[0].length);
      expect(Array.from((await g.run(view)).data)).toEqual(Array.from(frames[0], (v) => 255 - v));
    } finally {
      await g.dispose();
    }
  });
});

describe('session cache', () => {
  it('the same prompt and size give the same compiled graph; another size another one', async () => {
    const a = await runner.compile(chain5('cached'), W, H);
    const b = await runner.compile(chain5('cached'), W, H);
    const c = await runner.compile(chain5('cached'), 20, 16);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    await Promise.all([a.dispose(), b.dispose(), c.dispose()]);
    const again = await runner.compile(chain5('cached'), W, H); // still cached after every holder let go
    expect(again).toBe(a);
    expect((await again.run(frame)).width).toBe(30);
    await again.dispose();
  });

  it('evicts the least recently used unheld graph and frees its sessions', async () => {
    const cache = new SessionCache<CompiledGraph>(2);
    const config = loadConfig({ inference: { warmupFrames: 0 } }).inference;
    const compile = (id: string) => compileGraph(ref.singleNodePrompt(id, 'ImageInvert', {}), { width: W, height: H, workspace: runner.workspace, config, cache });
    const g1 = await compile('lru1');
    await g1.dispose();
    const g2 = await compile('lru2');
    const g3 = await compile('lru3'); // over capacity: g1 (unheld, oldest) goes
    expect(cache.size).toBe(2);
    await expect(g1.run(frame)).rejects.toMatchObject({ code: 'GRAPH_DISPOSED' });
    expect(Array.from((await g2.run(frame)).data.slice(0, 3))).toEqual(Array.from(frame.slice(0, 3), (v) => 255 - v));
    const g4 = await compile('lru4'); // g2 and g3 are held: the oldest is dropped from the cache but stays usable
    expect(cache.size).toBe(2);
    expect((await g2.run(frame)).width).toBe(W);
    await g2.dispose(); // last holder of an evicted graph frees it
    await expect(g2.run(frame)).rejects.toMatchObject({ code: 'GRAPH_DISPOSED' });
    await Promise.all([g3.dispose(), g4.dispose()]);
    await cache.clear();
  });

  it("provider 'cuda' without a usable CUDA provider falls back to the CPU", async () => {
    const cache = new SessionCache<CompiledGraph>(2);
    const g = await compileGraph(ref.singleNodePrompt('cuda', 'ImageInvert', {}), { width: W, height: H, workspace: runner.workspace, provider: 'cuda', cache });
    expect(g.provider).toBe((await cudaAvailable()) ? 'cuda' : 'cpu');
    expect(Array.from((await g.run(frame)).data)).toEqual(Array.from(frame, (v) => 255 - v));
    await cache.clear();
  });
});

/** A model written directly with onnx-proto: y = x * 0.5 + 0.25 (float NCHW in, same out). */
function writeModel(path: string, outChannels = 3): void {
  const F = onnx.TensorProto.DataType.FLOAT;
  const vi = (name: string, c: number) => ({ name, type: { tensorType: { elemType: F, shape: { dim: [{ dimValue: 1 }, { dimValue: c }, { dimParam: 'h' }, { dimParam: 'w' }] } } } });
  const graph = {
    name: 'halve',
    node: [
      { opType: 'Mul', input: ['x', 'half'], output: ['m'] },
      { opType: 'Add', input: ['m', 'quarter'], output: ['a'] },
      ...(outChannels === 3 ? [] : [{ opType: 'ReduceMean', input: ['a'], output: ['r'], attribute: [{ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [1] }] }]),
    ],
    initializer: [
      { name: 'half', dataType: F, dims: [], floatData: [0.5] },
      { name: 'quarter', dataType: F, dims: [], floatData: [0.25] },
    ],
    input: [vi('x', 3)],
    output: [vi(outChannels === 3 ? 'a' : 'r', outChannels)],
  };
  const bytes = onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 7, opsetImport: [{ domain: '', version: 13 }], graph })).finish();
  writeFileSync(path, bytes);
}

describe('OnnxModel', () => {
  const models = join(runner.workspace, 'models');
  mkdirSync(models, { recursive: true });
  writeModel(join(models, 'halve.onnx'));
  writeModel(join(models, 'gray.onnx'), 1);

  it('runs a workspace model between graph nodes', async () => {
    const p = prompt('model', [
      { id: '1', classType: 'LoadTensor', inputs: {} },
      { id: '2', classType: 'ImageInvert', inputs: { image: link('1') } },
      { id: '3', classType: 'OnnxModel', inputs: { image: link('2'), model_name: 'halve.onnx' } },
      { id: '4', classType: 'ImageBlur', inputs: { image: link('3'), blur_radius: 1, sigma: 1 } },
      { id: '5', classType: 'SaveTensor', inputs: { images: link('4') } },
    ]);
    const g = await runner.compile(p, W, H);
    try {
      expect(g.stageKinds).toEqual(['onnx', 'host:3', 'onnx']);
      const out = await g.run(frame);
      const inv = ref.invert(img);
      const want = ref.toRgb(ref.blur({ ...inv, d: inv.d.map((v) => v * 0.5 + 0.25) }, 1, 1));
      expect(ref.diffStats(out.data, want, 1).max).toBeLessThanOrEqual(1);
    } finally {
      await g.dispose();
    }
  });

  it('refuses a missing model and a model of the wrong output shape with typed errors', async () => {
    const p = (id: string, model: string) => ref.singleNodePrompt(id, 'OnnxModel', { model_name: model });
    await expect(runner.compile(p('m-miss', 'nope.onnx'), W, H)).rejects.toMatchObject({ code: 'GRAPH_MISSING_MODEL' });
    await expect(runner.compile(p('m-path', '../secret.onnx'), W, H)).rejects.toMatchObject({ code: 'GRAPH_MISSING_MODEL' });
    await expect(runner.compile(p('m-gray', 'gray.onnx'), W, H)).rejects.toMatchObject({ code: 'GRAPH_MODEL_SHAPE' });
  });
});

describe('typed errors', () => {
  it('unknown node types, dangling links, out-of-range values and wrong frames', async () => {
    const bad = (id: string, node: ResolvedNode) =>
      prompt(id, [{ id: '1', classType: 'LoadTensor', inputs: {} }, node, { id: '3', classType: 'SaveTensor', inputs: { images: link('2') } }]);
    const e1 = await runner.compile(bad('e1', { id: '2', classType: 'KSampler', inputs: {} }), W, H).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(GraphError);
    expect(e1).toMatchObject({ code: 'GRAPH_UNKNOWN_NODE', nodeId: '2' });
    await expect(runner.compile(bad('e2', { id: '2', classType: 'ImageInvert', inputs: { image: link('9') } }), W, H)).rejects.toMatchObject({ code: 'GRAPH_BAD_LINK' });
    await expect(runner.compile(bad('e3', { id: '2', classType: 'ImageBlur', inputs: { image: link('1'), blur_radius: 99, sigma: 1 } }), W, H)).rejects.toMatchObject({ code: 'GRAPH_BAD_INPUT' });
    await expect(runner.compile(bad('e4', { id: '2', classType: 'ImageBlend', inputs: { image1: link('1'), image2: link('1'), blend_factor: 0.5, blend_mode: 'hue' } }), W, H)).rejects.toMatchObject({ code: 'GRAPH_BAD_INPUT' });
    await expect(runner.compile(bad('e5', { id: '2', classType: 'ImageScaleBy', inputs: { image: link('1'), upscale_method: 'area', scale_by: 8 } }), 4000, 10)).rejects.toMatchObject({ code: 'GRAPH_BAD_INPUT' });
    const twoOut = ref.singleNodePrompt('e7', 'ImageInvert', {});
    twoOut.nodes.push({ id: '4', classType: 'SaveTensor', inputs: { images: link('1') } });
    await expect(runner.compile(twoOut, W, H)).rejects.toMatchObject({ code: 'GRAPH_BAD_LINK' });
    const twoIn = ref.singleNodePrompt('e8', 'ImageInvert', {});
    twoIn.nodes.splice(1, 0, { id: '0', classType: 'LoadTensor', inputs: {} });
    await expect(runner.compile(twoIn, W, H)).rejects.toMatchObject({ code: 'GRAPH_BAD_LINK' });
    await expect(runner.compile(ref.singleNodePrompt('e9', 'ImageInvert', {}), 0, H)).rejects.toMatchObject({ code: 'GRAPH_BAD_FRAME' });
    const g = await runner.compile(ref.singleNodePrompt('e6', 'ImageInvert', {}), W, H);
    await expect(g.run(new Uint8Array(10))).rejects.toMatchObject({ code: 'GRAPH_BAD_FRAME' });
    expect((await g.run(frame)).data.length).toBe(frame.length); // still fine afterwards
    await g.dispose();
  });
});
