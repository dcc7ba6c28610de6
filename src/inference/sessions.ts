// The per-process cache of compiled graphs, keyed by canonical graph (prompt id, nodes, frame size,
// provider, threads). A stream that switches back to an earlier prompt, or a shared worker hosting
// several streams with the same prompt, gets the warm graph instead of compiling again.
// Bounded LRU: entries nobody holds are evicted first; an evicted entry still held is released
// when its last holder disposes it.
import { createHash } from 'node:crypto';
import ort from 'onnxruntime-node';
import { GraphBuilder } from './onnx/builder.ts';
import type { ResolvedPrompt } from './types.ts';

/** What the cache holds: something with sessions to release. */
export interface Releasable {
  release(): Promise<void>;
}

interface Entry<T extends Releasable> {
  value: Promise<T>;
  refs: number;
  evicted: boolean;
}

export class SessionCache<T extends Releasable = Releasable> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The cached value for `key` (building it on a miss), counted as held until `release(key)`. */
  async acquire(key: string, build: () => Promise<T>): Promise<{ value: T; hit: boolean }> {
    let e = this.entries.get(key);
    const hit = e !== undefined;
    if (e) {
      this.entries.delete(key); // re-insert: Map order is the LRU order
      this.entries.set(key, e);
    } else {
      e = { value: build(), refs: 0, evicted: false };
      this.entries.set(key, e);
      e.value.catch(() => this.entries.get(key) === e && this.entries.delete(key));
    }
    e.refs++;
    try {
      const value = await e.value;
      await this.evict();
      return { value, hit };
    } catch (err) {
      e.refs--;
      throw err;
    }
  }

  /** Drops one hold on `key`'s value; releases it if it was evicted meanwhile and nobody holds it. */
  async release(key: string, value: T): Promise<void> {
    const e = this.entries.get(key);
    if (e && (await e.value) === value) {
      e.refs = Math.max(0, e.refs - 1);
      await this.evict();
      return;
    }
    // Not cached any more: the holder that disposes last frees it.
    const orphan = this.orphans.get(value);
    if (orphan !== undefined) {
      if (orphan <= 1) {
        this.orphans.delete(value);
        await value.release();
      } else this.orphans.set(value, orphan - 1);
    }
  }

  private readonly orphans = new Map<T, number>();

  private async evict(): Promise<void> {
    while (this.entries.size > this.capacity) {
      // Oldest unheld first; if every entry is held, the oldest goes to the orphans list.
      let victim: [string, Entry<T>] | undefined;
      for (const kv of this.entries) if (kv[1].refs === 0) {
        victim = kv;
        break;
      }
      victim ??= this.entries.entries().next().value as [string, Entry<T>];
      const [key, e] = victim;
      this.entries.delete(key);
      e.evicted = true;
      const value = await e.value.catch(() => undefined);
      if (!value) continue;
      if (e.refs === 0) await value.release();
      else this.orphans.set(value, e.refs);
    }
  }

  /** Releases everything (process shutdown, tests). */
  async clear(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) await (await e.value.catch(() => undefined))?.release();
    for (const v of this.orphans.keys()) await v.release();
    this.orphans.clear();
  }
}

/** Canonical cache key: md5 over the prompt's id and nodes (inputs in sorted key order) and the run parameters. */
export function graphKey(prompt: ResolvedPrompt, params: Record<string, string | number>): string {
  const canon = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, canon((v as Record<string, unknown>)[k])]))
      : Array.isArray(v)
        ? v.map(canon)
        : v;
  const body = JSON.stringify(canon({ id: prompt.id, nodes: prompt.nodes, input: prompt.inputNode, output: prompt.outputNode, params }));
  return createHash('md5').update(body).digest('hex');
}

export type Provider = 'cpu' | 'cuda';

/**
 * onnxruntime session options for a provider and thread count. Every session owns its thread pool:
 * `intraOpThreads - 1` threads besides the caller (none at the default of 1), no inter-op pool
 * (sequential execution). Pool threads do not spin waiting for work: spinning keeps a core busy
 * between runs (measured: ~1.8x the CPU per frame at 2 intra-op threads), which on a small node
 * takes it from the decoders, encoders and the other streams.
 */
export function sessionOptions(provider: Provider, intraOpThreads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    logSeverityLevel: 3,
    // onnxruntime session config keys session.intra_op.allow_spinning / session.inter_op.allow_spinning
    // (onnxruntime-node flattens `extra` into dotted keys).
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

let cudaProbe: Promise<boolean> | undefined;

/** Whether a CUDA session can actually be created here (the EP library and a GPU are present).
 * onnxruntime-node lists 'cuda' even when its provider library was never installed, so this
 * creates one tiny session once per process and remembers the answer. */
export function cudaAvailable(): Promise<boolean> {
  cudaProbe ??= (async () => {
    if (!ort.listSupportedBackends().some((b) => b.name === 'cuda')) return false;
    const g = new GraphBuilder('cuda_probe');
    const x = g.input('x', 'float32', [1]);
    g.output(g.op1('Neg', [x]), 'float32', [1]);
    try {
      const s = await ort.InferenceSession.create(g.toBytes(), { executionProviders: ['cuda'], logSeverityLevel: 4 });
      await s.release();
      return true;
    } catch {
      return false;
    }
  })();
  return cudaProbe;
}
