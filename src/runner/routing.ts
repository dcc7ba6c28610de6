// Graph routing for one stream: which inference worker holds which prompts, which prompt is
// active, at what frame size; where the next frame goes. Prompt updates compile and warm beside
// the running graphs and every worker of the stream swaps at one frame boundary; graphs of an old
// size stay alive while frames decoded at that size are still on their way (hold()).
import type { Logger } from '../log.ts';
import type { InferenceWorker, Prepared } from '../inference/threads/inference-worker.ts';
import type { RunResult } from '../inference/threads/inference-thread.ts';
import { WorkerError } from '../errors.ts';
import type { StreamPrompt } from '../stream-spec.ts';

export interface FrameSize {
  width: number;
  height: number;
}

export class GraphRouter {
  private readonly workers = new Map<string, InferenceWorker>();
  /** Each worker's prompt entries, to re-warm them when the stream's size changes. */
  private readonly prompts = new Map<string, StreamPrompt[]>();
  private sizeNow: FrameSize;
  private active: string;

  constructor(
    private readonly streamId: string,
    size: FrameSize,
    activePromptId: string,
    private readonly log: Logger,
  ) {
    this.sizeNow = { ...size };
    this.active = activePromptId;
  }

  get size(): FrameSize {
    return this.sizeNow;
  }

  get activePromptId(): string {
    return this.active;
  }

  get workerIds(): string[] {
    return [...this.workers.keys()];
  }

  get count(): number {
    return this.workers.size;
  }

  has(workerId: string): boolean {
    return this.workers.has(workerId);
  }

  /** Whether some worker holds the active prompt (the media path can run). */
  get ready(): boolean {
    return this.workerFor(this.active) !== undefined;
  }

  private workerFor(promptId: string): InferenceWorker | undefined {
    for (const w of this.workers.values()) if (w.has(promptId)) return w;
    return undefined;
  }

  private workerOrThrow(workerId: string): InferenceWorker {
    const w = this.workers.get(workerId);
    if (!w) throw new WorkerError('UNKNOWN_WORKER', `stream ${this.streamId} has no worker ${workerId}`);
    return w;
  }

  /** Adds a loaded worker. */
  add(workerId: string, worker: InferenceWorker, prompts: StreamPrompt[]): void {
    this.workers.set(workerId, worker);
    this.prompts.set(workerId, prompts);
  }

  /** Compiles and warms `prompts` for `workerId` beside the running graphs, then swaps every worker at once. */
  async update(workerId: string, prompts: StreamPrompt[], next: FrameSize): Promise<{ resized: boolean }> {
    const worker = this.workerOrThrow(workerId);
    const resized = next.width !== this.sizeNow.width || next.height !== this.sizeNow.height;
    // Every worker of the stream must take frames of the new size: on a resize the others re-warm
    // too. All compile beside the running graphs first, then all swap at once (one frame boundary).
    const staged: Prepared[] = [];
    try {
      staged.push(await worker.prepare(prompts, next.width, next.height));
      if (resized) {
        for (const [id, w] of this.workers) {
          if (id !== workerId) staged.push(await w.prepare(this.prompts.get(id) ?? [], next.width, next.height));
        }
      }
    } catch (err) {
      await Promise.allSettled(staged.map((p) => p.discard()));
      throw err;
    }
    for (const p of staged) p.commit();
    this.prompts.set(workerId, prompts);
    if (resized) {
      this.sizeNow = { ...next };
      this.log.info(next, 'stream size changed; frames at the new size start at the next input segment');
    }
    if (!this.workerFor(this.active) && prompts.length) {
      this.log.info({ from: this.active, to: prompts[0].id }, 'active prompt replaced by the update');
      this.active = prompts[0].id;
    }
    return { resized };
  }

  switchTo(promptId: string): void {
    if (!this.workerFor(promptId)) throw new WorkerError('PROMPT_NOT_FOUND', `no worker of stream ${this.streamId} holds prompt ${promptId}`);
    this.active = promptId;
  }

  /** Takes a worker out of the stream (the caller disposes of it). */
  remove(workerId: string): InferenceWorker {
    const w = this.workerOrThrow(workerId);
    this.workers.delete(workerId);
    this.prompts.delete(workerId);
    return w;
  }

  /** Takes every worker out (closing). */
  removeAll(): InferenceWorker[] {
    const all = [...this.workers.values()];
    this.workers.clear();
    this.prompts.clear();
    return all;
  }

  /** Holds every worker's graphs at `size` until the returned release is called. */
  hold(size: FrameSize): () => void {
    const releases = [...this.workers.values()].map((w) => w.hold(size.width, size.height));
    return () => {
      for (const r of releases.splice(0)) r();
    };
  }

  /** Runs one frame through the active prompt's graph (its output maybe into `out`); null when no worker holds it. */
  async run(data: Uint8Array, size: FrameSize, out?: Uint8Array): Promise<RunResult | null> {
    const promptId = this.active;
    const worker = this.workerFor(promptId);
    if (!worker) return null;
    return worker.run(promptId, data, size.width, size.height, out);
  }
}
