// ImageInvert, ImageBlur, ImageSharpen and ImageBlend compiled to onnxruntime, checked pixel by
// pixel against plain-TS references of ComfyUI's formulas (test/helpers/image-ref.ts).
// Tolerances (uint8 levels): invert exact; blur, sharpen, blend at most 1 (float32 in the graph vs
// float64 in the reference, both rounded half-to-even).
import { afterAll, describe, expect, it } from 'vitest';
import type { ResolvedNode, ResolvedPrompt } from '../src/inference/types.ts';
import * as ref from './helpers/image-ref.ts';
import { graphRunner } from './helpers/graph-run.ts';

const W = 41;
const H = 30;
const frame = ref.randomFrame(W, H, 7);
const img = ref.fromRgb(frame, W, H);
const runner = graphRunner();
afterAll(() => runner.close());

describe('ImageInvert', () => {
  it('returns exactly 255 - x for every byte', async () => {
    const out = await runner.run(ref.singleNodePrompt('inv', 'ImageInvert', {}), frame, W, H);
    expect(out.width).toBe(W);
    expect(out.height).toBe(H);
    expect(Array.from(out.data)).toEqual(Array.from(frame, (v) => 255 - v));
  });
});

describe('ImageBlur matches ComfyUI (reflect pad, 2-D gaussian over linspace(-1,1))', () => {
  for (const [radius, sigma] of [
    [1, 1],
    [3, 0.5],
    [6, 2.5],
    [14, 10],
  ] as const) {
    it(`radius ${radius} sigma ${sigma} within 1 level`, async () => {
      const out = await runner.run(ref.singleNodePrompt(`blur${radius}`, 'ImageBlur', { blur_radius: radius, sigma }), frame, W, H);
      const want = ref.toRgb(ref.blur(img, radius, sigma));
      expect(ref.diffStats(out.data, want, 1).max).toBeLessThanOrEqual(1);
    });
  }
  it('actually smooths: neighbouring-pixel differences drop', async () => {
    const out = await runner.run(ref.singleNodePrompt('blur-s', 'ImageBlur', { blur_radius: 4, sigma: 3 }), frame, W, H);
    const tv = (d: Uint8Array) => d.reduce((a, v, i) => (i >= 3 ? a + Math.abs(v - d[i - 3]) : a), 0);
    expect(tv(out.data)).toBeLessThan(tv(frame) * 0.6);
  });
});

describe('ImageSharpen matches ComfyUI (kernel -10a*G, centre + 1 - sum)', () => {
  for (const [radius, sigma, alpha] of [
    [1, 1, 1],
    [2, 0.7, 0.3],
    [5, 3, 2],
    [3, 1, 0],
  ] as const) {
    it(`radius ${radius} sigma ${sigma} alpha ${alpha} within 1 level`, async () => {
      const out = await runner.run(ref.singleNodePrompt(`sh${radius}-${alpha}`, 'ImageSharpen', { sharpen_radius: radius, sigma, alpha }), frame, W, H);
      const want = ref.toRgb(ref.sharpen(img, radius, sigma, alpha));
      expect(ref.diffStats(out.data, want, 1).max).toBeLessThanOrEqual(1);
    });
  }
});

describe('ImageBlend', () => {
  const modes = ['normal', 'multiply', 'screen', 'overlay', 'soft_light', 'difference'];
  // image2 = the inverted frame, so every mode sees both halves of its where() conditions
  const blendPrompt = (id: string, mode: string, factor: number, scaleImage2?: [number, number]): ResolvedPrompt => {
    const link = ref.link;
    const nodes: ResolvedNode[] = [
      { id: '1', classType: 'LoadTensor', inputs: {} },
      { id: '2', classType: 'ImageInvert', inputs: { image: link('1') } },
      ...(scaleImage2 ? [{ id: '5', classType: 'ImageScale', inputs: { image: link('2'), upscale_method: 'nearest-exact', width: scaleImage2[0], height: scaleImage2[1], crop: 'disabled' } }] : []),
      { id: '3', classType: 'ImageBlend', inputs: { image1: link('1'), image2: link(scaleImage2 ? '5' : '2'), blend_factor: factor, blend_mode: mode } },
      { id: '4', classType: 'SaveTensor', inputs: { images: link('3') } },
    ];
    return { id, inputNode: '1', outputNode: '4', nodes };
  };
  for (const mode of modes) {
    for (const factor of [0.35, 1]) {
      it(`${mode} at factor ${factor} within 1 level`, async () => {
        const out = await runner.run(blendPrompt(`bl-${mode}-${factor}`, mode, factor), frame, W, H);
        const want = ref.toRgb(ref.blend(img, ref.invert(img), factor, mode));
        expect(ref.diffStats(out.data, want, 1).max).toBeLessThanOrEqual(1);
      });
    }
  }
  it('fits an image2 of another size with bicubic + center crop first', async () => {
    const out = await runner.run(blendPrompt('bl-size', 'multiply', 0.8, [20, 24]), frame, W, H);
    expect([out.width, out.height]).toEqual([W, H]);
    const small = ref.interpolate(ref.invert(img), 20, 24, 'nearest-exact');
    const want = ref.toRgb(ref.blend(img, small, 0.8, 'multiply'));
    expect(ref.diffStats(out.data, want, 1).max).toBeLessThanOrEqual(1);
  });
});
