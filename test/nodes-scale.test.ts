// ImageScale / ImageScaleBy against plain-TS references of comfy.utils.common_upscale:
// torch interpolate (nearest-exact, bilinear, bicubic with A=-0.75, area = adaptive average pool,
// align_corners=False) and Pillow LANCZOS on the uint8-truncated image for lanczos.
// Tolerances (uint8 levels): nearest-exact and area exact-or-1 (float sums), bilinear and bicubic 1,
// lanczos 1 (Pillow's fixed-point coefficients vs float here); lanczos is also checked against real
// Pillow 12.3 output (fixture test/fixtures/nodes-scale-pillow-lanczos.json: Image.resize(LANCZOS)).
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import * as ref from './helpers/image-ref.ts';
import { graphRunner } from './helpers/graph-run.ts';

const W = 48;
const H = 36;
const frame = ref.randomFrame(W, H, 3);
const img = ref.fromRgb(frame, W, H);
const runner = graphRunner();
afterAll(() => runner.close());

const METHODS = ['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos'];

describe('ImageScale', () => {
  const cases: Array<[number, number, string]> = [
    [96, 72, 'disabled'], // 2x up
    [20, 15, 'disabled'], // odd down
    [31, 50, 'disabled'], // mixed: shrink W, grow H
    [40, 40, 'center'], // square from 4:3: crops columns
    [30, 60, 'center'], // tall: crops columns more
  ];
  for (const method of METHODS) {
    for (const [w, h, crop] of cases) {
      it(`${method} to ${w}x${h} crop ${crop} within 1 level`, async () => {
        const prompt = ref.singleNodePrompt(`sc-${method}-${w}-${h}-${crop}`, 'ImageScale', { upscale_method: method, width: w, height: h, crop });
        const out = await runner.run(prompt, frame, W, H);
        expect([out.width, out.height]).toEqual([w, h]);
        const want = ref.toRgb(ref.upscale(img, w, h, method, crop));
        expect(ref.diffStats(out.data, want, 1).max).toBeLessThanOrEqual(1);
      });
    }
  }

  it('width 0 keeps the aspect ratio from height (and height 0 from width)', async () => {
    const a = await runner.run(ref.singleNodePrompt('sc-w0', 'ImageScale', { upscale_method: 'bilinear', width: 0, height: 27, crop: 'disabled' }), frame, W, H);
    expect([a.width, a.height]).toEqual(ref.scaleSize(W, H, 0, 27));
    expect([a.width, a.height]).toEqual([36, 27]);
    const b = await runner.run(ref.singleNodePrompt('sc-h0', 'ImageScale', { upscale_method: 'bilinear', width: 50, height: 0, crop: 'disabled' }), frame, W, H);
    expect([b.width, b.height]).toEqual([50, 38]); // 36 * 50 / 48 = 37.5 -> Python round -> 38
    expect(ref.diffStats(b.data, ref.toRgb(ref.upscale(img, 50, 38, 'bilinear', 'disabled')), 1).max).toBeLessThanOrEqual(1);
  });

  it('width and height 0 pass the frame through unchanged', async () => {
    const out = await runner.run(ref.singleNodePrompt('sc-00', 'ImageScale', { upscale_method: 'bicubic', width: 0, height: 0, crop: 'center' }), frame, W, H);
    expect(Array.from(out.data)).toEqual(Array.from(frame));
  });
});

describe('ImageScaleBy', () => {
  for (const method of METHODS) {
    for (const s of [0.5, 1.3, 2]) {
      it(`${method} by ${s}`, async () => {
        const out = await runner.run(ref.singleNodePrompt(`sb-${method}-${s}`, 'ImageScaleBy', { upscale_method: method, scale_by: s }), frame, W, H);
        const [w, h] = ref.scaleBySize(W, H, s);
        expect([out.width, out.height]).toEqual([w, h]);
        const want = ref.toRgb(ref.upscale(img, w, h, method, 'disabled'));
        expect(ref.diffStats(out.data, want, 1).max).toBeLessThanOrEqual(1);
      });
    }
  }
});

describe('ImageScale lanczos equals Pillow', () => {
  const fx = JSON.parse(readFileSync(new URL('./fixtures/nodes-scale-pillow-lanczos.json', import.meta.url), 'utf8')) as {
    pillow: string;
    width: number;
    height: number;
    input: string;
    cases: Array<{ width: number; height: number; output: string }>;
  };
  const input = new Uint8Array(Buffer.from(fx.input, 'base64'));
  for (const c of fx.cases) {
    it(`to ${c.width}x${c.height}: within 1 level of Pillow ${fx.pillow}, at least 99.9% identical`, async () => {
      const prompt = ref.singleNodePrompt(`pil-lz-${c.width}x${c.height}`, 'ImageScale', { upscale_method: 'lanczos', width: c.width, height: c.height, crop: 'disabled' });
      const out = await runner.run(prompt, input, fx.width, fx.height);
      const d = ref.diffStats(out.data, new Uint8Array(Buffer.from(c.output, 'base64')), 0);
      expect(d.max).toBeLessThanOrEqual(1);
      expect(d.over / out.data.length).toBeLessThan(0.001);
    });
  }
});
