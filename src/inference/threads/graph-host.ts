// Compiled graphs by handle, through one graph cache (equal prompts at equal sizes share one compiled
// graph). What an inference thread runs (graph-thread.ts), and what runs graphs in the calling
// thread when a worker process keeps its graphs in-process (local-runner.ts).
import type { Logger } from '../../log.ts';
import { compileGraph, type CompiledGraph } from '../compile.ts';
import { SessionCache } from '../sessions.ts';
import type { ResolvedPrompt } from '../types.ts';
import type { ThreadInit } from './thread-protocol.ts';

export interface Compiled {
  handle: number;
  ms: number;
  outWidth: number;
  outHeight: number;
  shared: boolean;
}

export class GraphHost {
  private readonly cache: SessionCache<CompiledGraph>;
  private readonly handles = new Map<number, CompiledGraph>();
  private nextHandle = 1;

  constructor(
    private readonly init: Omit<ThreadInit, 'name'>,
    private readonly log: Logger,
  ) {
    this.cache = new SessionCache<CompiledGraph>(init.config.sessionCacheSize);
  }

  async compile(prompt: ResolvedPrompt, width: number, height: number): Promise<Compiled> {
    const t0 = performance.now();
    const g = await compileGraph(prompt, {
      width,
      height,
      workspace: this.init.config.workspace,
      provider: this.init.provider,
      config: this.init.config,
      cache: this.cache,
      logger: this.log,
    });
    // Another holder of the very same compiled graph: equal prompt and size, shared.
    const shared = [...this.handles.values()].includes(g);
    const handle = this.nextHandle++;
    this.handles.set(handle, g);
    return { handle, ms: performance.now() - t0, outWidth: g.output.width, outHeight: g.output.height, shared };
  }

  async run(handle: number, data: Uint8Array, out?: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number }> {
    const g = this.handles.get(handle);
    if (!g) throw Object.assign(new Error(`no graph handle ${handle}`), { code: 'GRAPH_DISPOSED' });
    return g.run(data, out);
  }

  async release(handle: number): Promise<void> {
    const g = this.handles.get(handle);
    this.handles.delete(handle);
    await g?.dispose();
  }

  async releaseAll(): Promise<void> {
    for (const h of [...this.handles.keys()]) await this.release(h);
  }
}
