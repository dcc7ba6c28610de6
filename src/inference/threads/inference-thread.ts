// Where an inference worker's graphs run: a LocalRunner (this thread, the default) or an
// InferenceThread, the main-thread handle on a worker_thread running graph-thread.ts. Frames are
// handed over by transferring their ArrayBuffer: the caller's frame buffer is detached after run(),
// and the result comes back the same way. One thread per worker id in a process: workers of
// different streams with the same id (the shared architecture's 'shared') use one thread and so
// share its compiled graphs; a thread ends when its last user releases it.
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../log.ts';
import type { ResolvedPrompt } from '../types.ts';
import { WorkerError } from '../../errors.ts';
import { GraphHost } from './graph-host.ts';
import type { FromThread, ThreadInit, ToThread } from './thread-protocol.ts';

export interface CompiledHandle {
  handle: number;
  /** Compile + warmup time (near 0 when the thread's cache already held the graph). */
  ms: number;
  outWidth: number;
  outHeight: number;
  /** The thread already held this compiled graph for another worker (equal prompt and size). */
  shared: boolean;
}

export interface RunResult {
  data: Uint8Array;
  width: number;
  height: number;
}

interface Pending {
  resolve: (m: FromThread) => void;
  reject: (e: Error) => void;
}

/**
 * Source of the thread's bootstrap. From the sources it registers tsx in the new thread, then loads
 * graph-thread.ts; inside the worker bundle (actors/worker-bundle.ts) this module is part of
 * main.mjs and the thread's entry is the bundled graph-thread.mjs beside it.
 */
function bootstrap(): string {
  if (!import.meta.url.endsWith('.ts')) return `import(${JSON.stringify(new URL('./graph-thread.mjs', import.meta.url).href)})`;
  const entry = new URL('./graph-thread.ts', import.meta.url).href;
  const loader = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(loader)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
}

/** Where an inference worker's graphs compile and run: a worker_thread, or the calling thread. */
export interface GraphRunner {
  readonly name: string;
  readonly alive: boolean;
  onFailure: (err: Error) => void;
  compile(prompt: ResolvedPrompt, width: number, height: number): Promise<CompiledHandle>;
  /** Runs one RGB24 frame. A thread runner detaches `data`'s buffer (it is transferred) and ignores
   *  `out`; the calling thread's runner lets the graph write its output into `out` (FrameGraph.run). */
  run(handle: number, data: Uint8Array, out?: Uint8Array): Promise<RunResult>;
  release(handle: number): Promise<void>;
  terminate(): Promise<void>;
}

/** Graphs in the calling thread: no isolate, no hand-over; a graph run holds the event loop. */
export class LocalRunner implements GraphRunner {
  private readonly host: GraphHost;
  private closed = false;
  onFailure: (err: Error) => void = () => undefined;

  constructor(
    readonly name: string,
    init: Omit<ThreadInit, 'name'>,
    log: Logger,
  ) {
    this.host = new GraphHost(init, log.child({ runner: name }));
  }

  get alive(): boolean {
    return !this.closed;
  }

  async compile(prompt: ResolvedPrompt, width: number, height: number): Promise<CompiledHandle> {
    try {
      return await this.host.compile(prompt, width, height);
    } catch (err) {
      throw new WorkerError('GRAPH_FAILED', err instanceof Error ? err.message : String(err), { cause: err });
    }
  }

  async run(handle: number, data: Uint8Array, out?: Uint8Array): Promise<RunResult> {
    try {
      return await this.host.run(handle, data, out);
    } catch (err) {
      throw new WorkerError('GRAPH_FAILED', err instanceof Error ? err.message : String(err), { cause: err });
    }
  }

  async release(handle: number): Promise<void> {
    await this.host.release(handle);
  }

  async terminate(): Promise<void> {
    this.closed = true;
    await this.host.releaseAll();
  }
}

export class InferenceThread implements GraphRunner {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | null = null;
  private readonly readyP: Promise<void>;
  /** Called once if the thread dies while in use (not after terminate()). */
  onFailure: (err: Error) => void = () => undefined;
  private terminating = false;

  constructor(
    readonly name: string,
    init: Omit<ThreadInit, 'name'>,
    private readonly log: Logger,
  ) {
    this.worker = new Worker(bootstrap(), { eval: true, workerData: { ...init, name } satisfies ThreadInit, name: `inference:${name}` });
    let ready!: () => void;
    let notReady!: (e: Error) => void;
    this.readyP = new Promise<void>((res, rej) => {
      ready = res;
      notReady = rej;
    });
    this.readyP.catch(() => undefined);
    this.worker.on('message', (m: FromThread) => {
      if (m.op === 'ready') return ready();
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.op === 'failed') p.reject(new WorkerError(m.code === 'INTERNAL' ? 'INTERNAL' : 'GRAPH_FAILED', m.message, { cause: { code: m.code } }));
      else p.resolve(m);
    });
    const die = (err: Error): void => {
      if (this.dead) return;
      this.dead = err;
      notReady(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      if (!this.terminating) {
        this.log.error({ err, thread: name }, 'inference thread died');
        this.onFailure(err);
      }
    };
    this.worker.on('error', (e) => die(new WorkerError('INFERENCE_THREAD_FAILED', `inference thread ${name} failed: ${e.message}`, { cause: e })));
    this.worker.on('exit', (code) => die(new WorkerError('INFERENCE_THREAD_FAILED', `inference thread ${name} exited (${code})`)));
  }

  get alive(): boolean {
    return !this.dead;
  }

  private call(msg: ToThread, transfer: ArrayBuffer[] = []): Promise<FromThread> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<FromThread>((resolve, reject) => {
      this.pending.set(msg.id, { resolve, reject });
      this.worker.postMessage(msg, transfer);
    });
  }

  async compile(prompt: ResolvedPrompt, width: number, height: number): Promise<CompiledHandle> {
    await this.readyP;
    const r = await this.call({ op: 'compile', id: this.nextId++, prompt, width, height });
    if (r.op !== 'compiled') throw new WorkerError('INTERNAL', `unexpected thread answer ${r.op}`);
    return { handle: r.handle, ms: r.ms, outWidth: r.outWidth, outHeight: r.outHeight, shared: r.shared };
  }

  /** Runs one RGB24 frame; `data`'s buffer is transferred (detached here) when it owns it whole. */
  async run(handle: number, data: Uint8Array): Promise<RunResult> {
    // A view on a larger (or shared) buffer cannot be moved without moving its neighbours: only
    // then is it copied. Decoded frames own their buffer, so this is the exception.
    const owned = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
    const view = owned ? data : data.slice();
    const buf = view.buffer as ArrayBuffer;
    const r = await this.call({ op: 'run', id: this.nextId++, handle, buf, byteOffset: view.byteOffset, byteLength: view.byteLength }, [buf]);
    if (r.op !== 'ran') throw new WorkerError('INTERNAL', `unexpected thread answer ${r.op}`);
    return { data: new Uint8Array(r.buf, r.byteOffset, r.byteLength), width: r.width, height: r.height };
  }

  async release(handle: number): Promise<void> {
    if (this.dead) return;
    await this.call({ op: 'release', id: this.nextId++, handle });
  }

  async terminate(): Promise<void> {
    this.terminating = true;
    await this.worker.terminate();
  }
}

/** The process's graph runners by worker id, reference counted: threads, or in-process runners. */
export class ThreadPool {
  private readonly threads = new Map<string, { thread: GraphRunner; users: number }>();

  constructor(
    private readonly init: Omit<ThreadInit, 'name'>,
    private readonly log: Logger,
    private readonly onFailure: (err: Error) => void,
    /** Each worker id gets its own worker_thread (else its graphs run in this thread). */
    private readonly threaded = true,
  ) {}

  acquire(name: string): GraphRunner {
    let e = this.threads.get(name);
    if (!e || !e.thread.alive) {
      const thread: GraphRunner = this.threaded ? new InferenceThread(name, this.init, this.log) : new LocalRunner(name, this.init, this.log);
      thread.onFailure = this.onFailure;
      e = { thread, users: 0 };
      this.threads.set(name, e);
    }
    e.users++;
    return e.thread;
  }

  async release(thread: GraphRunner): Promise<void> {
    const e = this.threads.get(thread.name);
    if (!e || e.thread !== thread) return thread.terminate();
    e.users--;
    if (e.users <= 0) {
      this.threads.delete(thread.name);
      await thread.terminate();
    }
  }

  get size(): number {
    return this.threads.size;
  }

  async closeAll(): Promise<void> {
    const all = [...this.threads.values()];
    this.threads.clear();
    await Promise.allSettled(all.map((e) => e.thread.terminate()));
  }
}
