// Parent side of the IPC bridge: serves the bus operations of one forked child on the parent's bus.
// The child's subscriptions and watches live here, on the child's behalf; all of them are removed
// when the child exits or its IPC channel closes, so a dead worker leaves no responders behind.
import { rootLogger, type Logger } from '../../log.ts';
import type { Bus, BusSubscription, KeyValue, KvWatcher } from '../bus.ts';
import {
  ChildToParentSchema,
  errorToWire,
  fromB64,
  isBusEnvelope,
  toB64,
  type ChildToParent,
  type ParentToChildBody,
} from './bridge-protocol.ts';

export interface ChildBridge {
  /** Subscriptions currently held for the child (for status pages and tests). */
  readonly subscriptionCount: number;
  readonly watchCount: number;
  /** Resolves once the bridge is torn down (child exit, IPC disconnect or `close()`). */
  readonly closed: Promise<void>;
  /** Tears the bridge down without touching the child process. */
  close(): void;
}

/**
 * The parent's handle on the IPC channel: a `ChildProcess` from `fork`. The channel is symmetric,
 * so a forked process's own `process` object fits too (then the bus lives in the child and the
 * parent reaches it with `connectParentBus({ ipc: child })`).
 */
export interface BridgeEndpoint {
  readonly pid?: number;
  readonly connected: boolean;
  readonly exitCode?: number | string | null;
  readonly signalCode?: string | null;
  send?(message: unknown, callback?: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'exit' | 'disconnect', listener: () => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'exit' | 'disconnect', listener: () => void): unknown;
}

export interface BridgeChildOptions {
  logger?: Logger;
}

export function bridgeChild(bus: Bus, child: BridgeEndpoint, opts: BridgeChildOptions = {}): ChildBridge {
  const log = (opts.logger ?? rootLogger).child({ component: 'bus-bridge', childPid: child.pid });
  const subs = new Map<number, BusSubscription>();
  const watches = new Map<number, KvWatcher>();
  let done = false;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });

  const send = (body: ParentToChildBody): void => {
    if (done || !child.connected) return;
    try {
      // The callback swallows EPIPE-style errors: a child that just died is handled by 'exit'.
      child.send?.({ sfbus: 1, ...body }, (err) => {
        if (err) log.debug({ err }, 'send to child failed');
      });
    } catch (err) {
      log.debug({ err }, 'send to child failed');
    }
  };

  const reply = (id: number, work: () => Promise<unknown>): void => {
    work().then(
      (result) => send({ op: 'res', id, ok: true, result }),
      (err: unknown) => send({ op: 'res', id, ok: false, error: errorToWire(err) }),
    );
  };

  const pump = async (sid: number, sub: BusSubscription): Promise<void> => {
    for await (const m of sub) send({ op: 'msg', sid, subject: m.subject, data: toB64(m.data), reply: m.reply });
    if (subs.get(sid) === sub) {
      subs.delete(sid);
      send({ op: 'subend', sid });
    }
  };

  const pumpWatch = async (wid: number, w: KvWatcher): Promise<void> => {
    for await (const c of w) send({ op: 'wev', wid, key: c.key, value: toB64(c.value), revision: c.revision, operation: c.operation });
    if (watches.get(wid) === w) {
      watches.delete(wid);
      send({ op: 'wend', wid });
    }
  };

  const kvCall = async (m: Extract<ChildToParent, { op: 'kv' }>): Promise<unknown> => {
    const kv: KeyValue = await bus.kv(m.bucket);
    const key = m.key ?? '';
    const value = m.value === undefined ? new Uint8Array(0) : fromB64(m.value);
    switch (m.method) {
      case 'open':
        return null;
      case 'get': {
        const e = await kv.get(key);
        return e && { key: e.key, value: toB64(e.value), revision: e.revision };
      }
      case 'put':
        return kv.put(key, value);
      case 'create':
        return kv.create(key, value);
      case 'update':
        return kv.update(key, value, m.revision ?? 0);
      case 'delete':
        await kv.delete(key);
        return null;
      case 'keys':
        return kv.keys(m.key);
    }
  };

  const handle = (m: ChildToParent): void => {
    switch (m.op) {
      case 'sub': {
        subs.get(m.sid)?.unsubscribe(); // a reused sid replaces, never leaks, the old subscription
        try {
          const sub = bus.subscribe(m.subject, { queue: m.queue });
          subs.set(m.sid, sub);
          void pump(m.sid, sub);
        } catch (err) {
          log.warn({ err, subject: m.subject }, 'child subscription refused');
          send({ op: 'subend', sid: m.sid });
        }
        return;
      }
      case 'unsub': {
        const sub = subs.get(m.sid);
        subs.delete(m.sid);
        sub?.unsubscribe();
        return;
      }
      case 'pub':
        try {
          bus.publish(m.subject, fromB64(m.data));
        } catch (err) {
          log.warn({ err, subject: m.subject }, 'child publish refused');
        }
        return;
      case 'req':
        reply(m.id, async () => {
          const r = await bus.request(m.subject, fromB64(m.data), { timeoutMs: m.timeoutMs });
          return { subject: r.subject, data: toB64(r.data), reply: r.reply };
        });
        return;
      case 'flush':
        reply(m.id, async () => {
          await bus.flush();
          return null;
        });
        return;
      case 'kv':
        reply(m.id, () => kvCall(m));
        return;
      case 'watch':
        reply(m.id, async () => {
          const kv = await bus.kv(m.bucket);
          const w = await kv.watch({ key: m.key, initial: m.initial });
          if (done) {
            w.stop();
            return null;
          }
          watches.set(m.wid, w);
          void pumpWatch(m.wid, w);
          return null;
        });
        return;
      case 'unwatch': {
        const w = watches.get(m.wid);
        watches.delete(m.wid);
        w?.stop();
        return;
      }
    }
  };

  const onMessage = (raw: unknown): void => {
    if (!isBusEnvelope(raw)) return; // someone else's message on the same channel
    const parsed = ChildToParentSchema.safeParse(raw);
    if (!parsed.success) {
      log.warn({ issues: parsed.error.issues }, 'malformed bus message from child dropped');
      return;
    }
    if (done) return;
    try {
      handle(parsed.data);
    } catch (err) {
      log.warn({ err }, 'bus message from child failed');
    }
  };

  const close = (): void => {
    if (done) return;
    // Tell a still-connected child its subscriptions ended (the parent's bus closed, or close()).
    for (const sid of subs.keys()) send({ op: 'subend', sid });
    for (const wid of watches.keys()) send({ op: 'wend', wid });
    done = true;
    child.off('message', onMessage);
    child.off('exit', close);
    child.off('disconnect', close);
    for (const s of subs.values()) s.unsubscribe();
    for (const w of watches.values()) w.stop();
    subs.clear();
    watches.clear();
    resolveClosed();
  };

  child.on('message', onMessage);
  child.on('exit', close);
  child.on('disconnect', close);
  // A bus that closes takes the bridge with it.
  void bus.closed.then(close);
  if (child.exitCode != null || child.signalCode != null || !child.connected) close();

  return {
    get subscriptionCount() {
      return subs.size;
    },
    get watchCount() {
      return watches.size;
    },
    closed,
    close,
  };
}
