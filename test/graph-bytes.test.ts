// The byte domain: where an op is exact on the frame's bytes (ImageInvert as 255 - x, nearest-exact
// resizes and crops as selections, ImageQuantize's 8-bit palette, ImageBlend at factor 0 or at 1 in
// mode normal) the compiled graph keeps the IMAGE as uint8 and never converts it to float32. Its
// output must be the very bytes of the all-float32 path (`bytes: false`) for every input byte, in
// every prompt shape: byte ops alone, byte ops around float ops, and bytes across host steps.
import onnxPkg from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { compileGraph, type CompiledGraph } from '../src/inference/compile.ts';
import { GraphBuilder } from '../src/inference/onnx/builder.ts';
import { FRAME_LUT, frameToImage, imageToFrame, storesAsIs } from '../src/inference/onnx/image.ts';
import { imageInvert } from '../src/inference/ops/image-invert.ts';
import { SessionCache } from '../src/inference/sessions.ts';
import type { ResolvedNode, ResolvedPrompt } from '../src/inference/types.ts';
import { graphRunner } from './helpers/graph-run.ts';
import * as ref from './helpers/image-ref.ts';

const { onnx } = onnxPkg;
const link = ref.link;
const W = 64;
const H = 24;
/** Every byte value in every channel (then pseudo-random pixels). */
function allBytesFrame(): Uint8Array {
  const f = ref.randomFrame(W, H, 7);
  for (let i = 0; i < 256; i++) for (let c = 0; c < 3; c++) f[i * 3 + c] = (i + c * 85) & 255;
  return f;
}
const frame = allBytesFrame();
const runner = graphRunner({ testNodes: true, warmupFrames: 0 });
afterAll(() => runner.close());

const chain = (id: string, nodes: Array<[string, Record<string, unknown>]>, extra: ResolvedNode[] = []): ResolvedPrompt => {
  const list: ResolvedNode[] = [{ id: '1', classType: 'LoadTensor', inputs: {} }];
  nodes.forEach(([classType, inputs], k) => list.push({ id: String(k + 2), classType, inputs: { image: link(String(k + 1)), ...inputs } }));
  list.push(...extra);
  const last = extra.length ? extra[extra.length - 1].id : String(nodes.length + 1);
  list.push({ id: 'out', classType: 'SaveTensor', inputs: { images: link(last) } });
  return { id, nodes: list, inputNode: '1', outputNode: 'out' };
};

async function both(p: ResolvedPrompt, rgb = frame): Promise<{ bytes: Uint8Array; float: Uint8Array; g: CompiledGraph; size: [number, number] }> {
  const cache = new SessionCache<CompiledGraph>(4);
  const opts = { width: W, height: H, workspace: runner.workspace, config: runner.config, cache };
  const g = await compileGraph(p, opts);
  const f = await compileGraph(p, { ...opts, bytes: false });
  try {
    const a = await g.run(rgb.slice());
    const b = await f.run(rgb.slice());
    expect([a.width, a.height]).toEqual([b.width, b.height]);
    return { bytes: Uint8Array.from(a.data), float: Uint8Array.from(b.data), g, size: [a.width, a.height] };
  } finally {
    await cache.clear();
  }
}

const inv: [string, Record<string, unknown>] = ['ImageInvert', {}];
const hold: [string, Record<string, unknown>] = ['TestHoldFrame', { hold_ms: 0 }];
const q16: [string, Record<string, unknown>] = ['ImageQuantize', { colors: 16, dither: 'none' }];
const nearest = (w: number, h: number, crop = 'disabled'): [string, Record<string, unknown>] => ['ImageScale', { upscale_method: 'nearest-exact', width: w, height: h, crop }];
const blur: [string, Record<string, unknown>] = ['ImageBlur', { blur_radius: 2, sigma: 1.5 }];

describe('byte domain', () => {
  it('storing the frame and its inversion gives their bytes back, for all 256 values', () => {
    expect(storesAsIs(FRAME_LUT)).toBe(true);
    const g = new GraphBuilder('t');
    const img = frameToImage(g, g.input('frame', 'uint8', [2, 2, 3]), 2, 2);
    const out = imageInvert.build(g, { id: '2', classType: 'ImageInvert', inputs: {} }, { image: img });
    expect(storesAsIs(out.bytes!.lut)).toBe(true);
    expect(imageToFrame(g, out)).toBe(out.bytes!.name);
  });

  it('an inverted frame is one BitwiseNot on uint8: the float path is left out of the model', () => {
    const g = new GraphBuilder('t');
    const img = frameToImage(g, g.input('frame', 'uint8', [2, 2, 3]), 2, 2);
    const out = imageToFrame(g, imageInvert.build(g, { id: '2', classType: 'ImageInvert', inputs: {} }, { image: img }));
    g.output(out, 'uint8', [2, 2, 3]);
    const model = onnx.ModelProto.decode(g.toBytes());
    expect(model.graph!.node!.map((n) => n.opType)).toEqual(['BitwiseNot']);
    expect(model.graph!.initializer).toEqual([]);
  });

  it('LoadTensor -> SaveTensor runs no session and hands the frame back as it came', async () => {
    const p = chain('pass', [nearest(0, 0)]);
    const g = await runner.compile(p, W, H);
    try {
      expect(g.stageCount).toBe(0);
      const out = await g.run(frame);
      expect(out.data).toBe(frame);
    } finally {
      await g.dispose();
    }
  });

  it.each([
    ['invert', [inv], 1],
    ['invert twice', [inv, inv], 1],
    ['nearest-exact down and up', [nearest(40, 10), inv, nearest(70, 30)], 1],
    ['nearest-exact with a center crop', [inv, nearest(30, 30, 'center')], 1],
    ['quantize', [q16], 1],
    ['quantize, floyd-steinberg, of the inversion', [inv, ['ImageQuantize', { colors: 7, dither: 'floyd-steinberg' }]], 2],
    ['invert, hold (host), invert', [inv, hold, inv], 3],
  ] as Array<[string, Array<[string, Record<string, unknown>]>, number]>)('%s: float32 never appears, the bytes equal the float path', async (name, nodes, stages) => {
    const { bytes, float, g } = await both(chain(name, nodes));
    expect(g.stageCount).toBe(stages);
    expect(ref.diffStats(bytes, float).max).toBe(0);
  });

  it.each([
    ['a blur after an inversion', [inv, blur]],
    ['bytes of an inversion across a host step, then a float op (table lookup)', [inv, hold, blur]],
    ['a quantized frame, then a float op', [q16, blur, inv]],
    ['a float op, then quantize, then invert', [blur, q16, inv]],
    ['lanczos after a nearest resize', [nearest(50, 20), ['ImageScale', { upscale_method: 'lanczos', width: 33, height: 17, crop: 'disabled' }]]],
  ] as Array<[string, Array<[string, Record<string, unknown>]>]>)('%s: same bytes as the float path', async (name, nodes) => {
    const { bytes, float } = await both(chain(name, nodes));
    expect(ref.diffStats(bytes, float).max).toBe(0);
  });

  it.each([
    ['factor 0 gives image1', 0, 'overlay'],
    ['factor 1 in mode normal gives image2', 1, 'normal'],
    ['factor 0.5 (float)', 0.5, 'screen'],
  ] as const)('ImageBlend %s, bit for bit', async (name, f, mode) => {
    const p = chain(`blend-${name}`, [inv, q16], [{ id: 'b', classType: 'ImageBlend', inputs: { image1: link('2'), image2: link('3'), blend_factor: f, blend_mode: mode } }]);
    const { bytes, float, g } = await both(p);
    expect(ref.diffStats(bytes, float).max).toBe(0);
    if (f === 0) expect(ref.diffStats(bytes, Uint8Array.from(frame, (v) => 255 - v)).max).toBe(0);
    if (f !== 0.5) expect(g.stageKinds).toEqual(['onnx', 'host:3']);
  });

  it('random chains of byte and float ops give the float path bytes', async () => {
    const pool: Array<[string, Record<string, unknown>]> = [inv, inv, hold, q16, nearest(48, 20), nearest(64, 24, 'center'), blur, ['ImageSharpen', { sharpen_radius: 1, sigma: 1, alpha: 0.5 }]];
    let s = 12345;
    const rnd = (n: number) => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % n;
    for (let k = 0; k < 12; k++) {
      const nodes = Array.from({ length: 1 + rnd(4) }, () => pool[rnd(pool.length)]);
      const { bytes, float } = await both(chain(`rand-${k}`, nodes), ref.randomFrame(W, H, k + 1));
      expect(ref.diffStats(bytes, float).max, nodes.map((n) => n[0]).join(' -> ')).toBe(0);
    }
  });
});

describe('output into a given buffer', () => {
  it.each([
    ['one byte op', [inv]],
    ['a float op', [blur]],
    ['a host step last', [inv, q16]],
    ['a resize (output of another size: the buffer is not used)', [nearest(48, 20)]],
    ['nothing (the frame back)', []],
  ] as Array<[string, Array<[string, Record<string, unknown>]>]>)('%s: same bytes, in the given buffer when it fits', async (name, nodes) => {
    const g = await runner.compile(chain(`into-${name}`, nodes), W, H);
    try {
      const plain = await g.run(frame.slice());
      const into = new Uint8Array(W * H * 3);
      const rgb = frame.slice();
      const r = await g.run(rgb, into);
      expect([r.width, r.height]).toEqual([plain.width, plain.height]);
      expect(ref.diffStats(Uint8Array.from(r.data), Uint8Array.from(plain.data)).max).toBe(0);
      if (nodes.length === 0) expect(r.data).toBe(rgb);
      else if (plain.data.length === into.length) expect(r.data).toBe(into);
      else expect(r.data).not.toBe(into);
    } finally {
      await g.dispose();
    }
  });
});
