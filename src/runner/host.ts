// The worker process's command handler: ProcCommands in, Replies out. Hosts the process's stream
// pipelines and its inference threads. Commands for one stream run one after another (in arrival
// order); different streams, and ping, do not wait for each other.
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Bus } from '../transport/bus.ts';
import { WorkerError } from '../errors.ts';
import { ProcCommand, type Reply } from '../transport/worker-protocol.ts';
import { errorCode } from './errors.ts';
import { ThreadPool } from '../inference/threads/inference-thread.ts';
import { StreamPipeline } from './pipeline.ts';

export interface WorkerHostOptions {
  bus: Bus;
  config: Readonly<Config>;
  log: Logger;
  pid?: number;
  /** An inference thread died: the process can no longer serve its streams. */
  onFatal?: (err: Error) => void;
}

export class WorkerHost {
  private readonly pipelines = new Map<string, StreamPipeline>();
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly threads: ThreadPool;
  private closing: Promise<void> | null = null;

  constructor(private readonly o: WorkerHostOptions) {
    const inf = o.config.inference;
    this.threads = new ThreadPool(
      { config: inf, provider: inf.provider, logLevel: o.config.logLevel },
      o.log,
      (err) => o.onFatal?.(err),
      inf.graphThreads,
    );
  }

  get streamIds(): string[] {
    return [...this.pipelines.keys()];
  }

  /** Answers one command (raw JSON from the bus). Never throws. */
  async handle(raw: unknown): Promise<Reply> {
    const parsed = ProcCommand.safeParse(raw);
    if (!parsed.success) return { ok: false, code: 'BAD_COMMAND', message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
    const cmd = parsed.data;
    try {
      if (cmd.type === 'ping') return { ok: true, result: { pid: this.o.pid ?? process.pid, streams: this.streamIds } };
      if (cmd.type === 'shutdown') {
        await this.closeAll();
        return { ok: true, result: {} };
      }
      if (this.closing) throw new WorkerError('SHUTTING_DOWN', 'the worker process is shutting down');
      const streamId = cmd.type === 'open_stream' ? cmd.stream.streamId : cmd.streamId;
      const result = await this.serial(streamId, () => this.run(cmd));
      return { ok: true, result };
    } catch (err) {
      const code = err instanceof WorkerError ? err.code : (errorCode(err) ?? 'INTERNAL');
      this.o.log.warn({ err, cmd: cmd.type, code }, 'command failed');
      return { ok: false, code, message: err instanceof Error ? err.message : String(err) };
    }
  }

  private serial<T>(key: string, f: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(f, f);
    const tail = next.catch(() => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return next;
  }

  private pipeline(streamId: string): StreamPipeline {
    const p = this.pipelines.get(streamId);
    if (!p) throw new WorkerError('UNKNOWN_STREAM', `stream ${streamId} is not open in this process`);
    return p;
  }

  private async run(cmd: Exclude<ProcCommand, { type: 'ping' | 'shutdown' }>): Promise<Record<string, unknown>> {
    switch (cmd.type) {
      case 'open_stream': {
        const have = this.pipelines.get(cmd.stream.streamId);
        if (have) {
          if (JSON.stringify(have.config) !== JSON.stringify(cmd.stream)) {
            this.o.log.warn({ streamId: cmd.stream.streamId }, 'open_stream again with another configuration; the open pipeline is kept');
          }
          return { opened: false };
        }
        const p = new StreamPipeline(cmd.stream, {
          bus: this.o.bus,
          config: this.o.config,
          threads: this.threads,
          log: this.o.log,
          pid: this.o.pid ?? process.pid,
          onFenced: (id) => {
            if (this.pipelines.get(id) === p) this.pipelines.delete(id);
          },
        });
        this.pipelines.set(cmd.stream.streamId, p);
        return { opened: true };
      }
      case 'add_worker':
        return this.pipeline(cmd.streamId).addWorker(cmd.workerId, cmd.prompts) as Promise<Record<string, unknown>>;
      case 'update_prompts':
        return this.pipeline(cmd.streamId).updatePrompts(cmd.workerId, cmd.prompts, cmd.width, cmd.height) as Promise<Record<string, unknown>>;
      case 'switch_prompt':
        return this.pipeline(cmd.streamId).switchPrompt(cmd.promptId);
      case 'remove_worker':
        return this.pipeline(cmd.streamId).removeWorker(cmd.workerId);
      case 'report_error':
        this.pipeline(cmd.streamId).reportError(cmd.errorType, cmd.message, cmd.details);
        return {};
      case 'close_stream': {
        const p = this.pipelines.get(cmd.streamId);
        if (!p) return { closed: false };
        this.pipelines.delete(cmd.streamId);
        await p.close();
        return { closed: true };
      }
    }
  }

  /** Closes every pipeline and inference thread (idempotent); `nodeGone`: the node died (StreamPipeline.leave). */
  closeAll(opts: { nodeGone?: boolean } = {}): Promise<void> {
    this.closing ??= (async () => {
      const all = [...this.pipelines.values()];
      this.pipelines.clear();
      await Promise.allSettled(all.map((p) => (opts.nodeGone ? p.leave() : p.close())));
      await this.threads.closeAll();
    })();
    return this.closing;
  }
}
