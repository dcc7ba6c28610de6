// The one contract every Bus implementation passes (style #3): embedded, bridged over IPC to a
// real forked process, and NATS against a real nats-server. A fabric is two connections onto the
// same bus (`a` and `b`, the same object where the implementation has only one) plus a factory for
// fresh connections that a test may close.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BusClosedError,
  BusInvalidSubjectError,
  BusNoRespondersError,
  BusTimeoutError,
  KvInvalidKeyError,
  KvRevisionMismatchError,
  type Bus,
  type BusMsg,
  type BusStatus,
  type BusSubscription,
  type KvChange,
  type KvWatcher,
} from '../../src/transport/bus.ts';

export interface BusFabric {
  a: Bus;
  b: Bus;
  /** Another connection onto the same bus, closed by the test that asked for it. */
  fresh(): Promise<Bus>;
  close(): Promise<void>;
}

let seq = 0;
/** A subject prefix / bucket name no other test uses, so tests on one fabric cannot interfere. */
const uniq = (p: string) => `${p}${++seq}x${Math.floor(Math.random() * 1e6)}`;

async function take(sub: AsyncIterable<BusMsg>, n: number): Promise<BusMsg[]> {
  const out: BusMsg[] = [];
  if (n === 0) return out;
  for await (const m of sub) {
    out.push(m);
    if (out.length === n) break;
  }
  return out;
}

/** Reads until a message on `sentinel` arrives; returns the subjects seen, sentinel included. */
async function subjectsUntil(sub: BusSubscription, sentinel: string): Promise<string[]> {
  const seen: string[] = [];
  for await (const m of sub) {
    seen.push(m.subject);
    if (m.subject === sentinel) break;
  }
  return seen;
}

async function takeChanges(w: KvWatcher, n: number): Promise<KvChange[]> {
  const out: KvChange[] = [];
  for await (const c of w) {
    out.push(c);
    if (out.length === n) break;
  }
  return out;
}

/** Answers every request on `sub` with `{ echo: <request json>, by }` until the subscription ends. */
function echo(sub: BusSubscription, by: string): Promise<void> {
  return (async () => {
    for await (const m of sub) m.respond({ echo: m.json(), by });
  })();
}

export function busContract(name: string, makeFabric: () => Promise<BusFabric>): void {
  describe(`bus contract: ${name}`, () => {
    let f: BusFabric;
    beforeAll(async () => {
      f = await makeFabric();
    });
    afterAll(async () => {
      await f?.close();
    });

    describe('publish / subscribe', () => {
      it('delivers JSON and raw bytes, in order, across connections', async () => {
        const s = uniq('ps');
        const sub = f.b.subscribe(`${s}.x`);
        await f.b.flush();
        f.a.publish(`${s}.x`, { hello: 'world', n: 1 });
        f.a.publish(`${s}.x`, new Uint8Array([0, 1, 2, 255]));
        f.a.publish(`${s}.x`, 'text');
        const [m1, m2, m3] = await take(sub, 3);
        expect(m1.subject).toBe(`${s}.x`);
        expect(m1.json()).toEqual({ hello: 'world', n: 1 });
        expect(m1.reply).toBeUndefined();
        expect([...m2.data]).toEqual([0, 1, 2, 255]);
        expect(m3.json()).toBe('text');
        expect(sub.isClosed()).toBe(true); // breaking out of for-await unsubscribed
      });

      it('every plain subscriber gets every message, on both connections', async () => {
        const s = uniq('fan');
        const s1 = f.a.subscribe(s);
        const s2 = f.b.subscribe(s);
        await Promise.all([f.a.flush(), f.b.flush()]);
        f.b.publish(s, 1);
        f.a.publish(s, 2);
        const [r1, r2] = await Promise.all([take(s1, 2), take(s2, 2)]);
        expect(r1.map((m) => m.json()).sort()).toEqual([1, 2]);
        expect(r2.map((m) => m.json()).sort()).toEqual([1, 2]);
      });

      it("'*' matches exactly one token", async () => {
        const s = uniq('star');
        const sub = f.b.subscribe(`${s}.*.evt`);
        await f.b.flush();
        for (const subj of [`${s}.1.evt`, `${s}.1.2.evt`, `${s}.evt`, `${s}.2.cmd`, `${s}.2.evt`, `${s}.end.evt`]) f.a.publish(subj, null);
        expect(await subjectsUntil(sub, `${s}.end.evt`)).toEqual([`${s}.1.evt`, `${s}.2.evt`, `${s}.end.evt`]);
      });

      it("'>' matches one or more trailing tokens", async () => {
        const s = uniq('gt');
        const sub = f.b.subscribe(`${s}.>`);
        await f.b.flush();
        for (const subj of [s, `${s}.a`, `other.${s}.a`, `${s}.a.b.c`, `${s}.end`]) f.a.publish(subj, null);
        expect(await subjectsUntil(sub, `${s}.end`)).toEqual([`${s}.a`, `${s}.a.b.c`, `${s}.end`]);
      });

      it('a queue group hands each message to exactly one member; each group and plain subscriber gets all', async () => {
        const s = uniq('q');
        const n = 100;
        const m1 = f.a.subscribe(s, { queue: 'workers' });
        const m2 = f.b.subscribe(s, { queue: 'workers' });
        const other = f.b.subscribe(s, { queue: 'auditors' });
        const plain = f.a.subscribe(s);
        await Promise.all([f.a.flush(), f.b.flush()]);
        const got = { m1: [] as number[], m2: [] as number[] };
        const done = new Promise<void>((resolve) => {
          const read = async (sub: BusSubscription, into: number[]) => {
            for await (const m of sub) {
              into.push(m.json<number>());
              if (got.m1.length + got.m2.length >= n) resolve();
            }
          };
          void read(m1, got.m1);
          void read(m2, got.m2);
        });
        for (let i = 0; i < n; i++) f.b.publish(s, i);
        const [others, plains] = await Promise.all([take(other, n), take(plain, n)]);
        await done;
        // Exactly n messages arrived at the group, and they are 0..n-1: none twice, none lost.
        const all = [...got.m1, ...got.m2].sort((x, y) => x - y);
        expect(all).toEqual([...Array(n).keys()]);
        expect(got.m1.length).toBeGreaterThan(0);
        expect(got.m2.length).toBeGreaterThan(0);
        expect(others.map((m) => m.json())).toEqual([...Array(n).keys()]);
        expect(plains.map((m) => m.json())).toEqual([...Array(n).keys()]);
        m1.unsubscribe();
        m2.unsubscribe();
      });

      it('rejects malformed subjects with BusInvalidSubjectError', () => {
        expect(() => f.a.publish('a..b', 1)).toThrow(BusInvalidSubjectError);
        expect(() => f.a.publish('a.*', 1)).toThrow(BusInvalidSubjectError);
        expect(() => f.a.publish('', 1)).toThrow(BusInvalidSubjectError);
        expect(() => f.a.publish('a b', 1)).toThrow(BusInvalidSubjectError);
        expect(() => f.a.subscribe('a.>.b')).toThrow(BusInvalidSubjectError);
      });
    });

    describe('request / reply', () => {
      it('returns the first reply, from another connection', async () => {
        const s = uniq('rr');
        const sub = f.b.subscribe(s);
        const served = echo(sub, 'b');
        await f.b.flush();
        const r = await f.a.request(s, { q: 42 }, { timeoutMs: 30_000 });
        expect(r.json()).toEqual({ echo: { q: 42 }, by: 'b' });
        sub.unsubscribe();
        await served;
      });

      it('a queue group of responders answers each request once', async () => {
        const s = uniq('rq');
        const r1 = f.a.subscribe(s, { queue: 'svc' });
        const r2 = f.b.subscribe(s, { queue: 'svc' });
        const served = [echo(r1, 'a'), echo(r2, 'b')];
        await Promise.all([f.a.flush(), f.b.flush()]);
        const replies = await Promise.all([...Array(20).keys()].map((i) => f.a.request(s, i, { timeoutMs: 30_000 })));
        expect(replies.map((r) => r.json<{ echo: number }>().echo)).toEqual([...Array(20).keys()]);
        r1.unsubscribe();
        r2.unsubscribe();
        await Promise.all(served);
      });

      it('fails with BusTimeoutError when the responder stays silent', async () => {
        const s = uniq('rt');
        const silent = f.b.subscribe(s);
        await f.b.flush();
        const err = await f.a.request(s, 1, { timeoutMs: 150 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BusTimeoutError);
        expect((err as BusTimeoutError).code).toBe('BUS_TIMEOUT');
        expect((err as BusTimeoutError).subject).toBe(s);
        silent.unsubscribe();
      });

      it('fails with BusNoRespondersError (not a timeout) when nobody listens', async () => {
        const s = uniq('rn');
        const err = await f.a.request(s, 1, { timeoutMs: 60_000 }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(BusNoRespondersError);
        expect((err as BusNoRespondersError).code).toBe('BUS_NO_RESPONDERS');
      });

      it('respond() is false on a message without a reply subject', async () => {
        const s = uniq('nr');
        const sub = f.b.subscribe(s);
        await f.b.flush();
        f.a.publish(s, 1);
        const [m] = await take(sub, 1);
        expect(m.respond('x')).toBe(false);
      });
    });

    describe('subscription lifecycle', () => {
      it('unsubscribe ends the iterator, resolves closed and removes the responder', async () => {
        const s = uniq('un');
        const sub = f.b.subscribe(s);
        const reading = take(sub, 10);
        await f.b.flush();
        sub.unsubscribe();
        await sub.closed;
        expect(sub.isClosed()).toBe(true);
        expect(await reading).toEqual([]);
        await f.b.flush();
        await expect(f.a.request(s, 1, { timeoutMs: 60_000 })).rejects.toBeInstanceOf(BusNoRespondersError);
      });

      it('drain yields what already arrived, then ends', async () => {
        const s = uniq('dr');
        const sub = f.b.subscribe(s);
        await f.b.flush();
        const gate = f.b.subscribe(`${s}.gate`);
        await f.b.flush();
        for (let i = 0; i < 3; i++) f.a.publish(s, i);
        f.a.publish(`${s}.gate`, null);
        await f.a.flush();
        await take(gate, 1); // the three were published before the gate message: they have arrived
        await sub.drain();
        await sub.closed;
        const got: unknown[] = [];
        for await (const m of sub) got.push(m.json());
        expect(got).toEqual([0, 1, 2]);
      });

      it('breaking out of for-await unsubscribes', async () => {
        const s = uniq('br');
        const sub = f.b.subscribe(s);
        await f.b.flush();
        f.a.publish(s, 1);
        await take(sub, 1);
        await sub.closed;
        await f.b.flush();
        await expect(f.a.request(s, 1, { timeoutMs: 60_000 })).rejects.toBeInstanceOf(BusNoRespondersError);
      });

      it('close ends subscriptions and status, resolves closed, and refuses further use', async () => {
        const bus = await f.fresh();
        const statuses: BusStatus[] = [];
        const statusDone = (async () => {
          for await (const st of bus.status()) statuses.push(st);
        })();
        const sub = bus.subscribe(uniq('cl'));
        await bus.flush();
        expect(bus.connection()).toBe('up');
        await bus.close();
        await bus.closed;
        await sub.closed;
        await statusDone;
        expect(bus.isClosed()).toBe(true);
        expect(bus.connection()).toBe('down');
        expect(statuses.at(-1)).toEqual({ type: 'close' });
        expect(() => bus.publish('x', 1)).toThrow(BusClosedError);
        await expect(bus.request('x', 1)).rejects.toBeInstanceOf(BusClosedError);
      });
    });

    describe('key-value', () => {
      it('get / put: absent is null; put returns increasing revisions', async () => {
        const kv = await f.a.kv(uniq('kv'));
        expect(await kv.get('missing')).toBeNull();
        const r1 = await kv.put('k', { v: 1 });
        const r2 = await kv.put('k', { v: 2 });
        expect(r2).toBeGreaterThan(r1);
        const e = await kv.get('k');
        expect(e?.json()).toEqual({ v: 2 });
        expect(e?.revision).toBe(r2);
        expect(e?.key).toBe('k');
      });

      it('create fails with KvRevisionMismatchError when the key has a value', async () => {
        const kv = await f.a.kv(uniq('kv'));
        const r = await kv.create('owner', 'node-1');
        const err = await kv.create('owner', 'node-2').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(KvRevisionMismatchError);
        expect((err as KvRevisionMismatchError).code).toBe('KV_REVISION_MISMATCH');
        expect((await kv.get('owner'))?.revision).toBe(r);
        expect((await kv.get('owner'))?.json()).toBe('node-1');
      });

      it('update is compare-and-set: the expected revision wins once, a stale one is refused', async () => {
        const kv = await f.a.kv(uniq('kv'));
        const r1 = await kv.put('s', { epoch: 1 });
        const r2 = await kv.update('s', { epoch: 2 }, r1);
        expect(r2).toBeGreaterThan(r1);
        const stale = await kv.update('s', { epoch: 3 }, r1).catch((e: unknown) => e);
        expect(stale).toBeInstanceOf(KvRevisionMismatchError);
        expect((stale as KvRevisionMismatchError).expectedRevision).toBe(r1);
        expect((await kv.get('s'))?.json()).toEqual({ epoch: 2 });
        // Two claimants racing with the same revision: exactly one wins.
        const results = await Promise.allSettled([kv.update('s', 'x', r2), kv.update('s', 'y', r2)]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        expect(rejected.reason).toBeInstanceOf(KvRevisionMismatchError);
      });

      it('delete makes a key absent; create works on it again', async () => {
        const kv = await f.a.kv(uniq('kv'));
        await kv.put('gone', 1);
        await kv.delete('gone');
        expect(await kv.get('gone')).toBeNull();
        expect(await kv.keys()).toEqual([]);
        const r = await kv.create('gone', 2);
        expect((await kv.get('gone'))?.revision).toBe(r);
      });

      it('keys lists live keys, sorted, filtered by wildcards', async () => {
        const kv = await f.a.kv(uniq('kv'));
        for (const k of ['n.b.1', 'n.a.1', 'n.a.2', 's.1']) await kv.put(k, k);
        await kv.delete('n.a.2');
        expect(await kv.keys()).toEqual(['n.a.1', 'n.b.1', 's.1']);
        expect(await kv.keys('n.*.1')).toEqual(['n.a.1', 'n.b.1']);
        expect(await kv.keys('n.>')).toEqual(['n.a.1', 'n.b.1']);
      });

      it('rejects invalid keys with KvInvalidKeyError', async () => {
        const kv = await f.a.kv(uniq('kv'));
        await expect(kv.put('a b', 1)).rejects.toBeInstanceOf(KvInvalidKeyError);
        await expect(kv.put('.a', 1)).rejects.toBeInstanceOf(KvInvalidKeyError);
        await expect(kv.get('a.*')).rejects.toBeInstanceOf(KvInvalidKeyError);
      });

      it('watch yields current values, then puts and deletes in write order', async () => {
        const bucket = uniq('kv');
        const kv = await f.a.kv(bucket);
        const r0 = await kv.put('w.0', 'zero');
        await kv.put('x.0', 'not watched');
        await kv.put('w.tomb', 'soon deleted');
        await kv.delete('w.tomb'); // a tombstone is not a current value
        const w = await (await f.b.kv(bucket)).watch({ key: 'w.>' });
        const r1 = await kv.put('w.1', 'one');
        await kv.delete('w.0');
        await kv.put('x.1', 'not watched');
        const r3 = await kv.put('w.2', { two: 2 });
        const changes = await takeChanges(w, 4);
        expect(changes.map((c) => [c.operation, c.key])).toEqual([
          ['PUT', 'w.0'],
          ['PUT', 'w.1'],
          ['DEL', 'w.0'],
          ['PUT', 'w.2'],
        ]);
        expect(changes[0].revision).toBe(r0);
        expect(changes[1].revision).toBe(r1);
        expect(changes[3].revision).toBe(r3);
        expect(changes[3].json()).toEqual({ two: 2 });
        expect(changes.map((c) => c.revision)).toEqual([...changes.map((c) => c.revision)].sort((x, y) => x - y));
      });

      it('watch with initial: false yields only later changes; stop ends it', async () => {
        const kv = await f.a.kv(uniq('kv'));
        await kv.put('old', 1);
        const w = await kv.watch({ initial: false });
        await kv.put('new', 2);
        const [c] = await takeChanges(w, 1);
        expect([c.operation, c.key, c.json()]).toEqual(['PUT', 'new', 2]);
        const w2 = await kv.watch({ initial: false });
        w2.stop();
        const rest: KvChange[] = [];
        for await (const x of w2) rest.push(x);
        expect(rest).toEqual([]);
      });

      it("one connection's writes are visible to the other", async () => {
        const bucket = uniq('kv');
        const ka = await f.a.kv(bucket);
        const kb = await f.b.kv(bucket);
        const r = await ka.create('stream.s1', { owner: 'a' });
        expect((await kb.get('stream.s1'))?.json()).toEqual({ owner: 'a' });
        await kb.update('stream.s1', { owner: 'b' }, r);
        expect((await ka.get('stream.s1'))?.json()).toEqual({ owner: 'b' });
      });
    });
  });
}
