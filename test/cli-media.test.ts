import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { segmentFile } from '../src/media/index.ts';
import { createTrickleServer, type TrickleServer } from '../src/transport/trickle/server.ts';
import { makeClip, probeFramePts, probePackets, tempDir } from './helpers/clips.ts';
import { probeFrameSizes } from './helpers/media.ts';

const bin = join(import.meta.dirname, '..', 'bin', 'streamfleet.js');
const dir = tempDir('sf-cli-media-');

/** Runs `streamfleet <args>` to its exit. */
function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 120_000, env: { ...process.env, SF_LOG_LEVEL: 'silent' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

let vfrClip: string; // 10 s, irregular timestamps, audio, 2 s GOPs
beforeAll(async () => {
  vfrClip = await makeClip(join(dir.path, 'vfr.ts'), { seconds: 10, width: 320, height: 240, audio: true, vfr: true });
});
afterAll(() => dir.remove());

describe('streamfleet process', () => {
  it('keeps every video frame with its pts, and the audio in sync, through the live segment path', async () => {
    const out = join(dir.path, 'processed.ts');
    const r = await cli(['process', vfrClip, out, '--width', '256', '--height', '192']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ segments: 5, videoFrames: 300, damagedSegments: 0 });

    const inPts = await probeFramePts(vfrClip);
    const outPts = await probeFramePts(out);
    expect(outPts.length).toBe(inPts.length);
    // Irregular intervals survive exactly (a constant offset would be allowed; there is none).
    const offset = outPts[0] - inPts[0];
    expect(outPts.map((p) => p - offset)).toEqual(inPts);
    expect(new Set(inPts.slice(1).map((p, i) => p - inPts[i])).size).toBeGreaterThan(2); // the input really is irregular

    const inPkts = await probePackets(vfrClip);
    const outPkts = await probePackets(out);
    const firstAudio = (pkts: typeof inPkts) => Math.min(...pkts.filter((p) => p.stream === 'audio').map((p) => p.pts));
    const firstVideo = (pkts: typeof inPkts) => Math.min(...pkts.filter((p) => p.stream === 'video').map((p) => p.pts));
    expect(outPkts.filter((p) => p.stream === 'audio').length).toBe(inPkts.filter((p) => p.stream === 'audio').length);
    const frame = 90_000 / 30;
    const syncIn = firstAudio(inPkts) - firstVideo(inPkts);
    const syncOut = firstAudio(outPkts) - firstVideo(outPkts);
    expect(Math.abs(syncOut - syncIn)).toBeLessThanOrEqual(frame);

    const sizes = await probeFrameSizes(out);
    expect(sizes.every((s) => s.width === 256 && s.height === 192)).toBe(true);
    // One IDR per output segment, i.e. per input GOP.
    expect(outPkts.filter((p) => p.stream === 'video' && p.flags.includes('K')).length).toBe(5);
  });

  it('answers bad usage with exit 2 and an unreadable input with exit 1 and a typed code', async () => {
    expect((await cli(['process', vfrClip])).code).toBe(2);
    expect((await cli(['process', vfrClip, join(dir.path, 'x.ts'), '--width', 'wide'])).code).toBe(2);
    const missing = await cli(['process', join(dir.path, 'nope.ts'), join(dir.path, 'x.ts')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('MEDIA_SEGMENT_FAILED');
  });
});

describe('streamfleet publish', () => {
  let server: TrickleServer | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  it('what pull writes equals, byte for byte, what publish posted, and every source packet pts is there', async () => {
    server = createTrickleServer();
    const { port } = await server.listen(0, '127.0.0.1');
    const url = `http://127.0.0.1:${port}/movie`;
    server.createChannel('movie');
    const pulled = join(dir.path, 'pulled.ts');
    const pull = cli(['pull', url, pulled, '--from', '0']);
    const pub = await cli(['publish', vfrClip, url]);
    expect(pub.stderr).toBe('');
    expect(pub.code).toBe(0);
    expect(JSON.parse(pub.stdout)).toMatchObject({ segments: 5 });
    const pullResult = await pull;
    expect(pullResult.code).toBe(0);

    // What publish posted: the file's segments (the remux is deterministic).
    const posted: Uint8Array[] = [];
    for await (const s of segmentFile(vfrClip)) posted.push(s.data);
    const got = readFileSync(pulled);
    expect(got.length).toBe(posted.reduce((n, p) => n + p.length, 0));
    expect(got.equals(Buffer.concat(posted))).toBe(true);

    const src = await probePackets(vfrClip);
    const dst = await probePackets(pulled);
    for (const kind of ['video', 'audio'] as const) {
      const want = src.filter((p) => p.stream === kind).map((p) => p.pts);
      const have = new Set(dst.filter((p) => p.stream === kind).map((p) => p.pts));
      expect(want.filter((p) => !have.has(p)), kind).toEqual([]);
    }
    expect(server.channels()).not.toContain('movie'); // publish closed the channel
  });
});
