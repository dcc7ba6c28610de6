// TestHoldFrame (image, hold_ms): test only, registered with `inference.testNodes`. Passes the image
// through unchanged after holding each frame hold_ms milliseconds, so a graph is slower than its
// input by construction (not by how fast this machine blurs). It waits on a timer, burning no CPU,
// and frames of one graph run one at a time, so the graph serves at most 1000 / hold_ms frames/s.
// The image goes out as it came in (bytes or float).
import { setTimeout as delay } from 'node:timers/promises';
import { numInput, type HostOp } from './types.ts';

export const testHoldFrame: HostOp = {
  kind: 'host',
  imageInputs: ['image'],
  takesBytes: true,
  async create(node, sizes, _env, carried) {
    const holdMs = numInput(node, 'hold_ms', 0, 10_000, true);
    return {
      size: sizes.image,
      output: carried.image,
      async run({ image }) {
        await delay(holdMs);
        return image;
      },
      async release() {},
    };
  },
};
