import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { makeClip, tempDir } from './helpers/clips.ts';
import { runSegments } from './helpers/runner-media.ts';

const dir = tempDir('sf-media-fuzz-');
let base: Uint8Array;
const media = loadConfig({ media: { width: 32, height: 32 } }).media;

/**
 * Runs `bytes` as one input segment of a stream through the runner's parts (input.ts demux,
 * processing.ts decode and encode), then a clean segment after it; returns the shape of what came
 * out of each. Any throw or hang fails the test.
 */
async function decodeAll(bytes: Uint8Array): Promise<{ frames: number; errors: string[]; clean: { frames: number; errors: string[] } }> {
  const r = await runSegments([bytes, base], { media });
  for (const f of r.frames) expect([f.width, f.height]).toEqual([32, 32]);
  const of = (seq: number) => ({
    frames: r.frames.filter((f) => f.seq === seq).length,
    errors: r.segments[seq].problem ? [r.segments[seq].problem!.code] : r.segments[seq].damaged ? ['MEDIA_DECODE_FAILED'] : [],
  });
  expect(r.segments.length).toBe(2);
  return { ...of(0), clean: of(1) };
}

beforeAll(async () => {
  // Small and short so 200 decodes stay quick: 64x48, 0.5 s, with audio.
  base = new Uint8Array(readFileSync(await makeClip(join(dir.path, 'tiny.ts'), { seconds: 0.5, width: 64, height: 48, audio: true, gop: 15 })));
});
afterAll(() => dir.remove());

describe('decoder fuzzing', () => {
  it('random bytes never crash or hang the decoder, and end in at most one typed error', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 8192 }),
          // Random payloads behind valid-looking TS sync bytes get further into the demuxer.
          fc.array(fc.uint8Array({ minLength: 187, maxLength: 187 }), { maxLength: 40 }).map((pkts) => new Uint8Array(pkts.flatMap((p) => [0x47, ...p]))),
        ),
        async (bytes) => {
          const r = await decodeAll(bytes);
          expect(r.errors.length).toBeLessThanOrEqual(1);
          // Bytes that held no frame are reported (an empty segment is just nothing in this one).
          if (r.frames === 0 && bytes.length > 0) expect(r.errors.length).toBe(1);
          expect(r.clean).toEqual({ frames: 15, errors: [] });
        },
      ),
      { numRuns: 100 },
    );
  });

  it('mutated real segments (flipped bytes, cuts, splices) never crash or hang, and a clean segment decodes after each', async () => {
    const mutation = fc.record({
      flips: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 64 }),
      cut: fc.option(fc.nat(), { nil: undefined }),
      splice: fc.option(fc.record({ from: fc.nat(), to: fc.nat(), len: fc.integer({ min: 1, max: 4096 }) }), { nil: undefined }),
    });
    await fc.assert(
      fc.asyncProperty(mutation, async (m) => {
        let bytes = base.slice();
        for (const f of m.flips) bytes[f.at % bytes.length] = f.value;
        if (m.splice) {
          const from = m.splice.from % bytes.length;
          const chunk = bytes.slice(from, from + m.splice.len);
          bytes.set(chunk.subarray(0, Math.max(0, bytes.length - (m.splice.to % bytes.length))), m.splice.to % bytes.length);
        }
        if (m.cut !== undefined) bytes = bytes.subarray(0, m.cut % (bytes.length + 1));
        const r = await decodeAll(bytes);
        expect(r.errors.length).toBeLessThanOrEqual(1);
        expect(r.clean.errors).toEqual([]);
        // Not always all 15: when the damaged segment's last pts lies a few frames into the clip, the
        // clean one's restart is a small step back and frames not after the last output are dropped
        // (timeline.ts, maxBackwardStepMs).
        expect(r.clean.frames).toBeGreaterThan(0);
      }),
      { numRuns: 100 },
    );
    const clean = await decodeAll(base);
    expect(clean).toEqual({ frames: 15, errors: [], clean: { frames: 15, errors: [] } });
  });
});
