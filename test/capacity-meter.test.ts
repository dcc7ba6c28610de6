// The capacity meter reads real /proc figures of a real process burning CPU: it learns a stream's
// cost from intervals that were steady at both ends, and never from a start-up, so a node that only
// starts and stops streams keeps the room it had.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { CapacityMeter } from '../src/actors/capacity.ts';
import { ClusterConfigSchema } from '../src/config.ts';

let child: ChildProcess | undefined;
afterEach(() => {
  if (child?.pid && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
});

/** A process that spins one core until killed. */
function burner(): number {
  child = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  return child.pid!;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('capacity meter', () => {
  const cfg = ClusterConfigSchema.parse({ streamCpuEstimate: 0.05 });

  it('does not learn from an interval with a stream starting at either end', async () => {
    const meter = new CapacityMeter(cfg, 1000);
    const pid = burner();
    const first = meter.sample([pid], 1, false);
    await wait(600);
    const mid = meter.sample([pid], 1, true); // warming at the start of this interval
    await wait(600);
    const last = meter.sample([pid], 1, false); // warming at its end
    expect(mid.cpuCores).toBeGreaterThan(0.3); // the burn is seen...
    expect([first.streamCpu, mid.streamCpu, last.streamCpu]).toEqual([0.05, 0.05, 0.05]); // ...not learnt
  });

  it('learns a steady stream\'s cost and the capacity follows it', async () => {
    const meter = new CapacityMeter(cfg, 1000);
    const pid = burner();
    const before = meter.sample([pid], 1, true);
    await wait(600);
    const after = meter.sample([pid], 1, true);
    expect(after.streamCpu).toBeGreaterThan(before.streamCpu * 2);
    expect(after.capacity).toBeLessThan(before.capacity);
  });
});
