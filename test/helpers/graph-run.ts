// Compiles and runs prompts for the graph/nodes tests with a cache private to the test file and a
// throwaway workspace; `close()` releases every session.
import { compileGraph, type CompiledGraph } from '../../src/inference/compile.ts';
import { SessionCache } from '../../src/inference/sessions.ts';
import { loadConfig } from '../../src/config.ts';
import type { ResolvedPrompt } from '../../src/inference/types.ts';
import { tempDir } from './clips.ts';

export function graphRunner(inference: Record<string, unknown> = {}) {
  const cache = new SessionCache<CompiledGraph>(64);
  const ws = tempDir('sf-graph-ws-');
  const config = loadConfig({ inference: { warmupFrames: 1, ...inference } }).inference;
  return {
    cache,
    config,
    workspace: ws.path,
    compile(prompt: ResolvedPrompt, width: number, height: number): Promise<CompiledGraph> {
      return compileGraph(prompt, { width, height, workspace: ws.path, config, cache });
    },
    async run(prompt: ResolvedPrompt, rgb: Uint8Array, width: number, height: number) {
      const g = await compileGraph(prompt, { width, height, workspace: ws.path, config, cache });
      try {
        return await g.run(rgb);
      } finally {
        await g.dispose();
      }
    },
    async close() {
      await cache.clear();
      ws.remove();
    },
  };
}
