// Helpers for the worker-process tests: fork the real worker entry over a real embedded bus bridge,
// talk ProcCommands to it, collect its stream events and heartbeats, publish a clip on a trickle
// channel at real-time pace, and pull an output channel into a file for ffprobe.
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConfigInput } from '../../src/config.ts';
import type { ComfyPrompt, StreamPrompt } from '../../src/stream-spec.ts';
import { ensureWorkspace } from '../../src/inference/workspace.ts';
import { validatePrompt } from '../../src/inference/validate.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { segmentFile, type TsSegment } from '../../src/media/segmenter.ts';
import { BusNoRespondersError, type Bus, type BusSubscription } from '../../src/transport/bus.ts';
import { connectNatsBus } from '../../src/transport/nats/nats-bus.ts';
import { bridgeChild } from '../../src/transport/local/bridge-parent.ts';
import { LocalBus } from '../../src/transport/local/local-bus.ts';
import { subjects } from '../../src/transport/subjects.ts';
import { TricklePublisher } from '../../src/transport/trickle/publisher.ts';
import { TrickleSubscriber } from '../../src/transport/trickle/subscriber.ts';
import { Reply, StreamEvent, WorkerHeartbeat, type ProcCommand } from '../../src/transport/worker-protocol.ts';

export const WORKER_MAIN = 'src/runner/main.ts';

/** A message log that can be awaited: `waitFor` resolves on the first (past or future) match. */
export class Log<T> {
  readonly items: T[] = [];
  private waiters: Array<{ pred: (t: T) => boolean; resolve: (t: T) => void }> = [];

  add(t: T): void {
    this.items.push(t);
    for (const w of [...this.waiters]) {
      if (w.pred(t)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(t);
      }
    }
  }

  waitFor(pred: (t: T) => boolean, timeoutMs = 30_000, what = 'message'): Promise<T> {
    const have = this.items.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise<T>((resolve, reject) => {
      const w = { pred, resolve: (t: T) => (clearTimeout(timer), resolve(t)) };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.items.slice(-5))}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
}

export interface WorkerProc {
  procId: string;
  child: ChildProcess;
  pid: number;
  bus: Bus;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: () => string;
  send(cmd: ProcCommand | Record<string, unknown>, timeoutMs?: number): Promise<Reply>;
  /** Resolves with the result of an ok reply; throws with the code otherwise. */
  ok(cmd: ProcCommand, timeoutMs?: number): Promise<Record<string, unknown>>;
  events(streamId: string): Log<StreamEvent>;
  heartbeats(streamId: string): Log<WorkerHeartbeat>;
  /** SIGKILL if still alive; closes the bus. */
  stop(): Promise<void>;
}

export interface StartWorkerOptions {
  procId?: string;
  config?: ConfigInput;
  /** Join a real nats-server instead of the embedded bus bridged over IPC. */
  natsUrl?: string;
}

let counter = 0;

function withoutNats(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { SF_NATS_URL: _, ...rest } = env;
  return rest;
}

export async function startWorker(opts: StartWorkerOptions = {}): Promise<WorkerProc> {
  const procId = opts.procId ?? `p${process.pid}-${++counter}`;
  const bus: Bus = opts.natsUrl ? await connectNatsBus(opts.natsUrl) : new LocalBus();
  const env = { ...withoutNats(process.env), SF_PROC_ID: procId, SF_NODE_ID: 'test-node', SF_CONFIG: JSON.stringify(opts.config ?? {}) };
  const child = fork(WORKER_MAIN, [], {
    execArgv: ['--import', 'tsx'],
    env: opts.natsUrl ? { ...env, SF_NATS_URL: opts.natsUrl } : env,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    if (process.env.SF_DEBUG_WORKER) process.stderr.write(c);
    err += c.toString();
    if (err.length > 200_000) err = err.slice(-100_000);
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  if (!opts.natsUrl) bridgeChild(bus, child);
  const subs: BusSubscription[] = [];
  const eventLogs = new Map<string, Log<StreamEvent>>();
  const hbLogs = new Map<string, Log<WorkerHeartbeat>>();
  const follow = <T>(subject: string, parse: (v: unknown) => T, log: Log<T>): void => {
    const sub = bus.subscribe(subject);
    subs.push(sub);
    void (async () => {
      for await (const m of sub) log.add(parse(m.json()));
    })();
  };
  const send = async (cmd: unknown, timeoutMs = 60_000): Promise<Reply> => {
    const m = await bus.request(subjects.procCmd(procId), cmd, { timeoutMs });
    return Reply.parse(m.json());
  };
  const proc: WorkerProc = {
    procId,
    child,
    pid: child.pid!,
    bus,
    exited,
    stderr: () => err,
    send: (cmd, timeoutMs) => send(cmd, timeoutMs),
    async ok(cmd, timeoutMs) {
      const r = await send(cmd, timeoutMs);
      if (!r.ok) throw new Error(`${cmd.type} failed: ${r.code}: ${r.message}`);
      return r.result;
    },
    events(streamId) {
      let l = eventLogs.get(streamId);
      if (!l) {
        l = new Log<StreamEvent>();
        eventLogs.set(streamId, l);
        follow(subjects.streamEvt(streamId), (v) => StreamEvent.parse(v), l);
      }
      return l;
    },
    heartbeats(streamId) {
      let l = hbLogs.get(streamId);
      if (!l) {
        l = new Log<WorkerHeartbeat>();
        hbLogs.set(streamId, l);
        follow(`sf.stream.${streamId}.worker.*.hb`, (v) => WorkerHeartbeat.parse(v), l);
      }
      return l;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      for (const s of subs) s.unsubscribe();
      await bus.close();
    },
  };
  // Joined the bus: the first ping that finds a responder answers (until then: no responders).
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`worker exited (${child.exitCode}) before joining the bus: ${err}`);
    try {
      const r = await send({ type: 'ping' }, 5_000);
      if (r.ok) break;
    } catch (e) {
      if (!(e instanceof BusNoRespondersError) || Date.now() > deadline) {
        await proc.stop();
        throw e;
      }
      await Promise.race([sleep(100), exited]);
    }
  }
  return proc;
}

/** A prompt: LoadTensor -> the given chain of single-image nodes -> SaveTensor. */
export function chainPrompt(nodes: Array<{ class_type: string; inputs?: Record<string, unknown> }>): ComfyPrompt {
  const p: ComfyPrompt = { '1': { class_type: 'LoadTensor', inputs: {} } };
  let prev = '1';
  nodes.forEach((n, i) => {
    const id = String(i + 2);
    p[id] = { class_type: n.class_type, inputs: { ...(n.inputs ?? {}), image: [prev, 0] } };
    prev = id;
  });
  p[String(nodes.length + 2)] = { class_type: 'SaveTensor', inputs: { images: [prev, 0] } };
  return p;
}

export const invertPrompt = (): ComfyPrompt => chainPrompt([{ class_type: 'ImageInvert' }]);
/** Two inversions: the picture comes back as it went in (tells an update apart from invert). */
export const identityPrompt = (): ComfyPrompt => chainPrompt([{ class_type: 'ImageInvert' }, { class_type: 'ImageInvert' }]);

export async function clipSegments(path: string): Promise<TsSegment[]> {
  const out: TsSegment[] = [];
  for await (const s of segmentFile(path)) out.push(s);
  return out;
}

export interface PublishOptions {
  /** Wait this long before a segment (index -> ms), e.g. to make the input stall. */
  pauseBefore?: (index: number) => number;
  /** Delete the channel at the end (the input ends). Default true. */
  close?: boolean;
  signal?: AbortSignal;
}

/**
 * Publishes segments in real time: each segment's bytes go out in as many chunks as it has video
 * frames, one chunk per frame interval, as a live encoder would send them.
 */
export async function publishLive(url: string, segments: TsSegment[], o: PublishOptions = {}): Promise<TricklePublisher> {
  const pub = new TricklePublisher(url);
  for (const seg of segments) {
    const pause = o.pauseBefore?.(seg.index) ?? 0;
    if (pause > 0) await sleep(pause, undefined, { signal: o.signal });
    const w = pub.next();
    const n = Math.max(1, seg.videoPackets);
    const step = Math.ceil(seg.data.length / n);
    const interval = (seg.durationSeconds * 1000) / n;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await w.write(seg.data.subarray(i * step, Math.min(seg.data.length, (i + 1) * step)));
      const due = t0 + (i + 1) * interval - performance.now();
      if (due > 0) await sleep(due, undefined, { signal: o.signal });
    }
    await w.end();
  }
  if (o.close ?? true) await pub.close();
  return pub;
}

/** Reads an output channel from seq 0 until it ends (or `stop()`), keeping each segment's bytes. */
export function pullChannel(url: string): { segments: Buffer[]; done: Promise<void>; stop(): void; writeTo(path: string): Promise<void> } {
  const sub = new TrickleSubscriber(url, { start: 0, waitForChannel: 120_000 });
  const segments: Buffer[] = [];
  // Waiting is for the channel to appear; once it carried data a 404 is its end.
  let seen = 0;
  sub.on('segment', () => seen++);
  sub.on('waiting-for-channel', () => {
    if (seen > 0) sub.close();
  });
  const done = (async () => {
    try {
      for await (const seg of sub) {
        try {
          const b = await seg.bytes();
          if (b.length) segments.push(b);
        } catch {
          // a cut segment: what it held is not comparable
        }
      }
    } catch {
      // channel errors end the pull
    }
  })();
  return {
    segments,
    done,
    stop: () => sub.close(),
    writeTo: (path) => writeFile(path, Buffer.concat(segments)),
  };
}

/**
 * A stream prompt as a node hands it to a worker process: validated once, here (test-only nodes
 * allowed), carrying its resolved graph. `workspace` for prompts that name models.
 */
export function entry(id: string, prompt: ComfyPrompt, workspace = ensureWorkspace(join(tmpdir(), 'sf-test-prompt-ws'))): StreamPrompt {
  const r = validatePrompt(prompt, { workspace, maxNodes: 64, testNodes: true });
  if (!r.valid) throw new Error(`test prompt ${id} does not validate: ${r.error.message} ${JSON.stringify(r.validation_errors)}`);
  return { id, prompt, graph: r.prompt };
}
