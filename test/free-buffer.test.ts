// onnxruntime's outputs are freed when a graph run ends (free-buffer.ts), in a process with the flags
// a worker gets: many runs into a caller's buffer leave no trail of 768 KiB buffers for a garbage
// collection to find. The same runs without the flags show the trail (so the figure can see it).
// Large, fixed young spaces keep any collection from freeing the trail meanwhile.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { V8_TRANSFER_FLAGS } from '../src/free-buffer.ts';

const run = promisify(execFile);
const script = fileURLToPath(new URL('./helpers/graph-frees-outputs.ts', import.meta.url));
const RUNS = 12;

async function figures(flags: readonly string[]) {
  const { stdout } = await run(process.execPath, ['--min-semi-space-size=64', '--max-semi-space-size=64', ...flags, '--import', 'tsx', script, String(RUNS)], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as { stages: string[]; grewBytes: number; frameBytes: number; same: boolean; inputIntact: boolean; ownedOk: boolean };
}

describe('graph outputs freed at the end of a run', () => {
  it('frees every onnxruntime output it does not answer, and nothing it answers', async () => {
    const [freed, kept] = await Promise.all([figures(V8_TRANSFER_FLAGS), figures([])]);
    expect(freed.stages).toEqual(['onnx', 'host:3', 'onnx']);
    for (const f of [freed, kept]) {
      expect(f.same).toBe(true);
      expect(f.inputIntact).toBe(true);
      expect(f.ownedOk).toBe(true);
    }
    // Two outputs a run (the first stage's, the second's), each a frame.
    if (V8_TRANSFER_FLAGS.length > 0) expect(kept.grewBytes).toBeGreaterThanOrEqual(RUNS * kept.frameBytes);
    expect(freed.grewBytes).toBeLessThan(freed.frameBytes);
  }, 90_000);
});
