import { defineConfig } from 'vitest/config';

// Files that push live media in real time and assert frame-exact output or flat latency. On two
// cores they must not share the CPU with other test files, so they run one at a time, after the
// rest of the suite (which runs two files at once).
const REALTIME = [
  'test/runtime-*.test.ts',
  'test/serve-*.test.ts',
  'test/worker-media-path.test.ts',
  'test/worker-timestamps.test.ts',
  'test/worker-lifecycle.test.ts',
  'test/worker-resize.test.ts',
  'test/http-streams.test.ts',
  'test/infra-compose-nodes.test.ts',
  'test/cluster-*.test.ts',
  'test/dashboard.browser.test.ts',
];

export default defineConfig({
  test: {
    // Native addons (node-av, onnxruntime) are not safe to share between worker threads: forks.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    setupFiles: ['./src/polyfill.ts'],
    projects: [
      {
        extends: true,
        test: { name: 'parallel', include: ['test/**/*.test.ts'], exclude: REALTIME, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'realtime', include: REALTIME, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
