// ImageQuantize: median-cut palette of the frame, then Pillow's palette mapping (nearest entry to
// the 4-aligned corner of the pixel's colour cell) with none / floyd-steinberg / bayer dithering.
// Checked byte for byte against Pillow 12.3 running ComfyUI's own procedure (fixture
// test/fixtures/nodes-quantize-pillow.json: `im.quantize(colors)` for the palette, then
// `im.quantize(palette=..., dither=...)`, and Quantize.bayer for bayer-N, on a 48x32 frame),
// plus properties any correct implementation has and Bayer against an independent reference.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { medianCutPalette } from '../src/inference/ops/palette.ts';
import * as ref from './helpers/image-ref.ts';
import { graphRunner } from './helpers/graph-run.ts';

const W = 40;
const H = 32;
const runner = graphRunner();
afterAll(() => runner.close());

const q = (id: string, colors: number, dither: string) => ref.singleNodePrompt(id, 'ImageQuantize', { colors, dither });
const colorsOf = (d: Uint8Array) => {
  const s = new Set<number>();
  for (let i = 0; i < d.length; i += 3) s.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
  return [...s].map((k) => [k >> 16, (k >> 8) & 255, k & 255]);
};
const d2 = (a: number[], b: number[]) => (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2;

interface PillowFixture {
  pillow: string;
  width: number;
  height: number;
  input: string;
  cases: Array<{ colors: number; dither: string; output: string }>;
}
const pillow = JSON.parse(readFileSync(new URL('./fixtures/nodes-quantize-pillow.json', import.meta.url), 'utf8')) as PillowFixture;

describe('ImageQuantize equals Pillow', () => {
  const input = new Uint8Array(Buffer.from(pillow.input, 'base64'));
  for (const c of pillow.cases) {
    it(`${c.colors} colours, ${c.dither}: identical bytes to Pillow ${pillow.pillow}`, async () => {
      const out = await runner.run(q(`pil-${c.colors}-${c.dither}`, c.colors, c.dither), input, pillow.width, pillow.height);
      const want = new Uint8Array(Buffer.from(c.output, 'base64'));
      expect(ref.diffStats(out.data, want).max).toBe(0);
    });
  }
});

describe('ImageQuantize', () => {
  it('keeps a frame of 12 colours on the 4-grid exactly (colors >= 12, dither none)', async () => {
    const pal = Array.from({ length: 12 }, (_, k) => [(k * 52) & 252, (k * 100 + 8) & 252, (255 - k * 20) & 252]);
    const frame = new Uint8Array(W * H * 3);
    for (let i = 0; i < W * H; i++) frame.set(pal[(i * 7 + (i >> 5)) % 12], i * 3);
    for (const colors of [12, 64, 256]) {
      const out = await runner.run(q(`qx${colors}`, colors, 'none'), frame, W, H);
      expect(Array.from(out.data)).toEqual(Array.from(frame));
    }
  });

  it('dither none: at most `colors` colours, each pixel on its nearest used colour', async () => {
    const frame = ref.randomFrame(W, H, 11);
    const out = await runner.run(q('qn16', 16, 'none'), frame, W, H);
    const used = colorsOf(out.data);
    expect(used.length).toBeLessThanOrEqual(16);
    expect(used.length).toBeGreaterThan(8);
    for (let i = 0; i < frame.length; i += 3) {
      const corner = [frame[i] & 252, frame[i + 1] & 252, frame[i + 2] & 252];
      const mine = d2(corner, [out.data[i], out.data[i + 1], out.data[i + 2]]);
      for (const c of used) expect(mine).toBeLessThanOrEqual(d2(corner, c));
    }
  });

  it('median cut splits the most populated box at its pixel median (equal values stay together)', async () => {
    // greys 0 (10%), 100 (10%), 200 (80%): the first cut leaves {200} alone, the other box averages to 50
    const frame = new Uint8Array(W * H * 3);
    for (let i = 0; i < W * H; i++) frame.fill(i % 10 === 0 ? 0 : i % 10 === 1 ? 100 : 200, i * 3, i * 3 + 3);
    const out = await runner.run(q('qmc', 2, 'none'), frame, W, H);
    const used = colorsOf(out.data).map((c) => c[0]).sort((a, b) => a - b);
    expect(used).toEqual([50, 200]);
    expect(Array.from(out.data.slice(0, 9))).toEqual([50, 50, 50, 50, 50, 50, 200, 200, 200]);
  });

  it('colors 1 paints the whole frame one colour, near the frame mean', async () => {
    const frame = ref.randomFrame(W, H, 5);
    const out = await runner.run(q('q1', 1, 'none'), frame, W, H);
    const used = colorsOf(out.data);
    expect(used.length).toBe(1);
    for (let c = 0; c < 3; c++) {
      let sum = 0;
      for (let i = c; i < frame.length; i += 3) sum += frame[i];
      expect(Math.abs(used[0][c] - sum / (W * H))).toBeLessThanOrEqual(1);
    }
  });

  it('floyd-steinberg keeps local averages closer to the input than no dither', async () => {
    // a grey ramp (inside the palette's hull, so diffused error is never clipped away)
    const frame = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) frame.fill(Math.round(40 + (x * 175) / (W - 1)), (y * W + x) * 3, (y * W + x) * 3 + 3);
    const none = await runner.run(q('qfs-n', 4, 'none'), frame, W, H);
    const fs = await runner.run(q('qfs', 4, 'floyd-steinberg'), frame, W, H);
    expect(colorsOf(fs.data).length).toBeLessThanOrEqual(4);
    const blockErr = (d: Uint8Array) => {
      let err = 0;
      for (let by = 0; by < H; by += 8)
        for (let bx = 0; bx < W; bx += 8)
          for (let c = 0; c < 3; c++) {
            let diff = 0;
            for (let y = by; y < by + 8; y++) for (let x = bx; x < bx + 8; x++) diff += d[(y * W + x) * 3 + c] - frame[(y * W + x) * 3 + c];
            err += Math.abs(diff / 64);
          }
      return err;
    };
    expect(blockErr(fs.data)).toBeLessThan(blockErr(none.data) * 0.7);
  });

  for (const order of [2, 4, 8, 16]) {
    it(`bayer-${order} equals threshold-matrix + palette mapping`, async () => {
      const frame = ref.randomFrame(W, H, order);
      const colors = 8;
      const out = await runner.run(q(`qb${order}`, colors, `bayer-${order}`), frame, W, H);
      const pal = medianCutPalette(frame, colors);
      // ComfyUI's normalized_bayer_matrix, written out independently
      const bayer = (n: number): number[][] => {
        if (n === 0) return [[0]];
        const qq = 4 ** n;
        const m = bayer(n - 1).map((r) => r.map((v) => v * qq));
        const top = m.map((r) => [...r.map((v) => (v - 1.5) / qq), ...r.map((v) => (v + 0.5) / qq)]);
        const bottom = m.map((r) => [...r.map((v) => (v + 1.5) / qq), ...r.map((v) => (v - 0.5) / qq)]);
        return [...top, ...bottom];
      };
      const mat = bayer(Math.log2(order)).map((r) => r.map((v) => ((2 * 256) / pal.size) * v + 0.5));
      const entries = Array.from({ length: pal.size }, (_, k) => [pal.rgb[k * 3], pal.rgb[k * 3 + 1], pal.rgb[k * 3 + 2]]);
      const want = new Uint8Array(frame.length);
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const i = (y * W + x) * 3;
          const v = [0, 1, 2].map((c) => Math.trunc(Math.min(255, Math.max(0, frame[i + c] + mat[y % order][x % order]))) & 252);
          let best = 0;
          for (let k = 1; k < entries.length; k++) if (d2(v, entries[k]) < d2(v, entries[best])) best = k;
          want.set(entries[best], i);
        }
      expect(ref.diffStats(out.data, want).max).toBe(0);
    });
  }
});
