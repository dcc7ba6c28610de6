import { defineConfig } from 'vitest/config';

// Two cores in CI: run test files in at most two forked processes (native addons such as node-av
// and onnxruntime are not safe to share between worker threads).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    setupFiles: ['./src/polyfill.ts'],
  },
});
