// One inference worker of a stream: its prompts compiled and warm at the stream's size, in an
// inference thread. Updates compile beside the running graphs (prepare) and swap in one assignment
// (commit), so the next frame (a frame boundary) uses the new graphs.
//
// Graph lifetime: every load makes a *generation* (the prompts' graphs at one size). A replaced
// generation is retired, not released, while something may still need it:
// - a frame running on it right now (counted per generation), and
// - for the newest generation of a size that is no longer current: any hold on that size. The
//   pipeline holds a size for as long as frames decoded at it may still arrive (see hold()), so
//   frames decoded at the old size before a size change finish on the old graphs.
// A retired generation is released as soon as neither keeps it.
import type { Logger } from '../../log.ts';
import { WorkerError } from '../../errors.ts';
import type { StreamPrompt } from '../../stream-spec.ts';
import type { GraphRunner, RunResult } from './inference-thread.ts';

interface Generation {
  width: number;
  height: number;
  /** Graph handles in the thread, by prompt id. */
  graphs: Map<string, number>;
  /** Frames running on this generation now. */
  running: number;
  /** The prompt the last frame on this generation ran on: what the stream showed at this size. */
  lastPromptId: string | null;
}

export interface LoadResult {
  /** Compile + warmup time of all the prompts (they compile one after another in the thread). */
  warmupMs: number;
  /** How many of the prompts reused a graph another worker in the same thread already held. */
  shared: number;
}

/** Prompts compiled and warm beside the running ones; nothing changes until commit(). */
export interface Prepared extends LoadResult {
  readonly width: number;
  readonly height: number;
  /** Makes the prepared graphs the current ones (synchronous: a frame boundary). */
  commit(): void;
  /** Releases the prepared graphs instead (another worker's update failed). */
  discard(): Promise<void>;
}

const sizeKey = (width: number, height: number): string => `${width}x${height}`;

export class InferenceWorker {
  private current: Generation | null = null;
  /** Replaced generations still needed (oldest first); see the header. */
  private retired: Generation[] = [];
  /** Holds on frame sizes (see hold()). */
  private readonly holds = new Map<string, number>();
  private disposed = false;

  constructor(
    readonly workerId: string,
    readonly thread: GraphRunner,
    private readonly log: Logger,
  ) {}

  get promptIds(): string[] {
    return [...(this.current?.graphs.keys() ?? [])];
  }

  has(promptId: string): boolean {
    return this.current?.graphs.has(promptId) ?? false;
  }

  /** Graph generations alive in this worker: the current one and retired ones still needed. */
  get generations(): number {
    return (this.current ? 1 : 0) + this.retired.length;
  }

  /** Compiles and warms `prompts` (validated where the request arrived) at width x height, then swaps them in. */
  async load(prompts: StreamPrompt[], width: number, height: number): Promise<LoadResult> {
    const p = await this.prepare(prompts, width, height);
    p.commit();
    return { warmupMs: p.warmupMs, shared: p.shared };
  }

  /**
   * Compiles `prompts` at width x height beside the running generation; a prompt that fails to
   * compile changes nothing.
   */
  async prepare(prompts: StreamPrompt[], width: number, height: number): Promise<Prepared> {
    const resolved = prompts.map((p) => ({ id: p.id, prompt: p.graph }));
    const gen: Generation = { width, height, graphs: new Map(), running: 0, lastPromptId: null };
    let warmupMs = 0;
    let shared = 0;
    try {
      for (const { id, prompt } of resolved) {
        const c = await this.thread.compile(prompt, width, height);
        gen.graphs.set(id, c.handle);
        warmupMs += c.ms;
        if (c.shared) shared++;
      }
    } catch (err) {
      await this.releaseGeneration(gen);
      if (err instanceof WorkerError && err.code !== 'GRAPH_FAILED') throw err;
      throw new WorkerError('PROMPT_REJECTED', `compiling prompts for ${this.workerId} failed: ${(err as Error).message}`, { cause: err });
    }
    let settled = false;
    return {
      width,
      height,
      warmupMs,
      shared,
      commit: () => {
        if (settled) return;
        settled = true;
        if (this.disposed) {
          void this.releaseGeneration(gen);
          throw new WorkerError('SHUTTING_DOWN', `worker ${this.workerId} was removed while compiling`);
        }
        if (this.current) this.retired.push(this.current);
        this.current = gen;
        this.sweep();
        this.log.debug({ workerId: this.workerId, prompts: [...gen.graphs.keys()], width, height, warmupMs, retired: this.retired.length }, 'prompts loaded');
      },
      discard: async () => {
        if (settled) return;
        settled = true;
        await this.releaseGeneration(gen);
      },
    };
  }

  /**
   * Keeps the graphs for frames of width x height alive until the returned release is called, even
   * if an update replaces them meanwhile (a size change). The pipeline holds the size a segment is
   * decoded at until the segment's last frame has run.
   */
  hold(width: number, height: number): () => void {
    const key = sizeKey(width, height);
    this.holds.set(key, (this.holds.get(key) ?? 0) + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const n = (this.holds.get(key) ?? 1) - 1;
      if (n > 0) this.holds.set(key, n);
      else this.holds.delete(key);
      this.sweep();
    };
  }

  /**
   * Runs one frame through `promptId`'s graph at the frame's size; the frame buffer is moved. A frame
   * of a size no longer current runs on the retired generation of its size; if that generation has
   * no such prompt (the update replaced it), on the prompt its last frame ran on: the old graph.
   * Routing is the pipeline's; the size says which generation.
   */
  async run(promptId: string, data: Uint8Array, width: number, height: number, out?: Uint8Array): Promise<RunResult> {
    const gen = this.generationFor(width, height);
    if (!gen) {
      if (!this.has(promptId)) throw new WorkerError('PROMPT_NOT_FOUND', `worker ${this.workerId} holds no prompt ${promptId}`);
      throw new WorkerError('GRAPH_FAILED', `no graph for ${promptId} at ${width}x${height}`);
    }
    let id = promptId;
    // Replaced by the update: the old graph is the one the stream showed at this size (or, if no
    // frame ran on it yet, the set's first prompt, which an update makes active).
    if (!gen.graphs.has(id) && gen !== this.current) id = gen.lastPromptId ?? gen.graphs.keys().next().value ?? id;
    const handle = gen.graphs.get(id);
    if (handle === undefined) {
      if (gen === this.current) throw new WorkerError('PROMPT_NOT_FOUND', `worker ${this.workerId} holds no prompt ${promptId}`);
      throw new WorkerError('GRAPH_FAILED', `no graph for ${promptId} at ${width}x${height}`);
    }
    gen.running++;
    gen.lastPromptId = id;
    try {
      return await this.thread.run(handle, data, out);
    } finally {
      gen.running--;
      this.sweep();
    }
  }

  /** The generation a frame of this size runs on: the current one, else the newest retired of that size. */
  private generationFor(width: number, height: number): Generation | undefined {
    if (this.current && this.current.width === width && this.current.height === height) return this.current;
    for (let i = this.retired.length - 1; i >= 0; i--) {
      const g = this.retired[i];
      if (g.width === width && g.height === height) return g;
    }
    return undefined;
  }

  /** Releases the retired generations nothing needs any more. */
  private sweep(): void {
    if (!this.retired.length) return;
    const keep = this.retired.filter((g) => g.running > 0 || (this.generationFor(g.width, g.height) === g && (this.holds.get(sizeKey(g.width, g.height)) ?? 0) > 0));
    const done = this.retired.filter((g) => !keep.includes(g));
    this.retired = keep;
    for (const g of done) {
      this.log.debug({ workerId: this.workerId, width: g.width, height: g.height }, 'retired graphs released');
      void this.releaseGeneration(g);
    }
  }

  private async releaseGeneration(gen: Generation): Promise<void> {
    await Promise.allSettled([...gen.graphs.values()].map((h) => this.thread.release(h)));
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    const all = [...(this.current ? [this.current] : []), ...this.retired];
    this.current = null;
    this.retired = [];
    for (const g of all) await this.releaseGeneration(g);
  }
}
