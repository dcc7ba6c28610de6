// One inference worker of a stream: its prompts compiled and warm at the stream's size, in an
// inference thread. Updates compile beside the running graphs and swap in one assignment, so the
// next frame (a frame boundary) uses the new graphs while a frame in flight finishes on the old.
import type { Logger } from '../../log.ts';
import type { PromptEntry } from '../../transport/worker-protocol.ts';
import type { ResolvedPrompt } from '../types.ts';
import { WorkerError } from './errors.ts';
import type { InferenceThread, RunResult } from './inference-thread.ts';

interface Loaded {
  handle: number;
  width: number;
  height: number;
}

type GraphSet = Map<string, Loaded>;

export interface LoadResult {
  /** Compile + warmup time of all the prompts (they compile one after another in the thread). */
  warmupMs: number;
  /** How many of the prompts reused a graph another worker in the same thread already held. */
  shared: number;
}

export class InferenceWorker {
  private current: GraphSet = new Map();
  /** The set replaced by a size change, kept until the first frame at the new size arrives. */
  private previous: GraphSet | null = null;
  private disposed = false;

  constructor(
    readonly workerId: string,
    readonly thread: InferenceThread,
    private readonly resolve: (entry: PromptEntry) => ResolvedPrompt,
    private readonly log: Logger,
  ) {}

  get promptIds(): string[] {
    return [...this.current.keys()];
  }

  has(promptId: string): boolean {
    return this.current.has(promptId);
  }

  /**
   * Validates and compiles `prompts` at width x height beside the running set, then swaps. Prompts
   * are validated first, so an invalid one changes nothing.
   */
  async load(prompts: PromptEntry[], width: number, height: number): Promise<LoadResult> {
    const resolved = prompts.map((p) => ({ id: p.id, prompt: this.resolve(p) }));
    const next: GraphSet = new Map();
    let warmupMs = 0;
    let shared = 0;
    try {
      for (const { id, prompt } of resolved) {
        const c = await this.thread.compile(prompt, width, height);
        next.set(id, { handle: c.handle, width, height });
        warmupMs += c.ms;
        if (c.shared) shared++;
      }
    } catch (err) {
      await this.releaseSet(next);
      if (err instanceof WorkerError && err.code !== 'graph_failed') throw err;
      throw new WorkerError('compile_failed', `compiling prompts for ${this.workerId} failed: ${(err as Error).message}`, { cause: err });
    }
    if (this.disposed) {
      await this.releaseSet(next);
      throw new WorkerError('shutting_down', `worker ${this.workerId} was removed while compiling`);
    }
    const old = this.current;
    const sizeChanged = [...old.values()].some((g) => g.width !== width || g.height !== height);
    this.current = next;
    if (sizeChanged) {
      // Frames decoded at the old size may still be waiting: they finish on the old graphs.
      if (this.previous) await this.releaseSet(this.previous);
      this.previous = old;
    } else await this.releaseSet(old);
    this.log.debug({ workerId: this.workerId, prompts: [...next.keys()], width, height, warmupMs }, 'prompts loaded');
    return { warmupMs, shared };
  }

  /** Runs one frame through `promptId`'s graph at the frame's size; the frame buffer is moved. */
  async run(promptId: string, data: Uint8Array, width: number, height: number): Promise<RunResult> {
    let g = this.current.get(promptId);
    if (g && (g.width !== width || g.height !== height)) {
      const old = this.previous?.get(promptId);
      g = old && old.width === width && old.height === height ? old : undefined;
      if (!g) throw new WorkerError('graph_failed', `no graph for ${promptId} at ${width}x${height}`);
    } else if (g && this.previous) {
      // The first frame at the new size: the old graphs are done with.
      const prev = this.previous;
      this.previous = null;
      void this.releaseSet(prev);
    }
    if (!g) throw new WorkerError('unknown_prompt', `worker ${this.workerId} holds no prompt ${promptId}`);
    return this.thread.run(g.handle, data);
  }

  private async releaseSet(set: GraphSet): Promise<void> {
    await Promise.allSettled([...set.values()].map((g) => this.thread.release(g.handle)));
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const sets = [this.current, this.previous ?? new Map<string, Loaded>()];
    this.current = new Map();
    this.previous = null;
    for (const s of sets) await this.releaseSet(s);
  }
}
