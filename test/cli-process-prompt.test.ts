// `streamfleet process --prompt`: a file through the live media path and a compiled prompt. Each
// node's output is compared with its plain-TypeScript reference applied to the same frame of an
// identity run, so both sides went through one x264 encode; tolerances cover that codec noise.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphTransform, loadPromptGraph, processCommand, run as processRun } from '../src/cli/commands/process.ts';
import { loadConfig } from '../src/config.ts';
import { grabRgbFrame, makeClip, probeFramePts, tempDir } from './helpers/clips.ts';
import { blend, blur, fromRgb, invert, sharpen, toRgb, upscale, type Img } from './helpers/image-ref.ts';

const SIZE = 256;
let dir: ReturnType<typeof tempDir>;
let clip: string;
let identity: string;
let identityFine: string;
let grey: string;

function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

function chain(node: { class_type: string; inputs: Record<string, unknown> }): Record<string, unknown> {
  return {
    '1': { class_type: 'LoadImage', inputs: {} },
    '2': node,
    '3': { class_type: 'PreviewImage', inputs: { images: ['2', 0] } },
  };
}

/**
 * The command's own functions with a near-lossless encode (crf 4), so what is left between output and
 * reference is the codec's chroma subsampling, not its quantisation noise amplified by the node.
 */
async function processFine(name: string, prompt?: Record<string, unknown>): Promise<string> {
  const out = join(dir.path, `${name}-fine.ts`);
  const config = loadConfig({ media: { width: SIZE, height: SIZE, crf: 4 }, inference: { workspace: join(dir.path, 'ws') } });
  let transform;
  if (prompt) {
    const p = join(dir.path, `${name}-fine.json`);
    writeFileSync(p, JSON.stringify(prompt));
    transform = graphTransform(await loadPromptGraph(p, config));
  }
  await processCommand(grey, out, config, transform);
  return out;
}

async function processWith(name: string, prompt?: Record<string, unknown>): Promise<string> {
  const out = join(dir.path, `${name}.ts`);
  const args = [clip, out, '--width', String(SIZE), '--height', String(SIZE), '--workspace', join(dir.path, 'ws')];
  if (prompt) {
    const p = join(dir.path, `${name}.json`);
    writeFileSync(p, JSON.stringify(prompt));
    args.push('--prompt', p);
  }
  expect(await processRun(args)).toBe(0);
  return out;
}

beforeAll(async () => {
  dir = tempDir('sf-process-prompt-');
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 2, width: 320, height: 240, fps: 15, audio: true });
  // A grey copy for the reference comparisons: with flat chroma, 4:2:0 subsampling cannot differ between
  // "filter, then subsample" (ours) and "subsample, then filter" (the reference's input).
  grey = join(dir.path, 'grey.ts');
  await promisify(execFile)('ffmpeg', ['-v', 'error', '-y', '-i', clip, '-vf', 'hue=s=0', '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '4', '-g', '30', '-bf', '0', '-an', '-f', 'mpegts', grey]);
  identity = await processWith('identity');
  identityFine = await processFine('identity');
});
afterAll(() => dir.remove());

describe('process --prompt', () => {
  it('inverts every frame (255 minus the input, within codec tolerance) and keeps the pts', async () => {
    const out = await processWith('invert', chain({ class_type: 'ImageInvert', inputs: { image: ['1', 0] } }));
    expect(await probeFramePts(out)).toEqual(await probeFramePts(identity));
    for (const k of [0, 10, 25]) {
      const src = await grabRgbFrame(identity, k);
      const got = await grabRgbFrame(out, k);
      const expected = Uint8Array.from(src.data, (v) => 255 - v);
      expect(meanAbsDiff(got.data, expected), `frame ${k}`).toBeLessThan(3);
      expect(meanAbsDiff(got.data, src.data), `frame ${k} must differ from its input`).toBeGreaterThan(40);
    }
  });

  const cases: Array<{ name: string; node: { class_type: string; inputs: Record<string, unknown> }; ref: (img: Img) => Img; size?: number }> = [
    { name: 'ImageBlur', node: { class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 6, sigma: 3 } }, ref: (i) => blur(i, 6, 3) },
    {
      name: 'ImageSharpen',
      node: { class_type: 'ImageSharpen', inputs: { image: ['1', 0], sharpen_radius: 2, sigma: 1, alpha: 2 } },
      ref: (i) => sharpen(i, 2, 1, 2),
    },
    {
      name: 'ImageBlend',
      node: { class_type: 'ImageBlend', inputs: { image1: ['1', 0], image2: ['1', 0], blend_factor: 0.7, blend_mode: 'screen' } },
      ref: (i) => blend(i, i, 0.7, 'screen'),
    },
    {
      name: 'ImageScale',
      node: { class_type: 'ImageScale', inputs: { image: ['1', 0], upscale_method: 'bilinear', width: 128, height: 96, crop: 'disabled' } },
      ref: (i) => upscale(i, 128, 96, 'bilinear', 'disabled'),
      size: 128,
    },
  ];

  for (const c of cases) {
    it(`${c.name} matches its reference on decoded frames`, async () => {
      const out = await processFine(c.name, chain(c.node));
      const src = await grabRgbFrame(identityFine, 12);
      const got = await grabRgbFrame(out, 12);
      const expected = toRgb(c.ref(fromRgb(src.data, src.width, src.height)));
      if (c.size) expect(got.width).toBe(c.size);
      // The reference runs on an encoded-then-decoded frame; the output was encoded once more.
      expect(meanAbsDiff(got.data, expected)).toBeLessThan(2.5);
      if (got.data.length === src.data.length) expect(meanAbsDiff(got.data, src.data)).toBeGreaterThan(meanAbsDiff(got.data, expected));
    });
  }

  it('refuses an unrunnable prompt with exit 1 before touching the input', async () => {
    const p = join(dir.path, 'bad.json');
    writeFileSync(p, JSON.stringify(chain({ class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 50 } })));
    expect(await processRun([clip, join(dir.path, 'never.ts'), '--prompt', p])).toBe(1);
  });
});
