// Trickle fan-out over loopback: 1 publisher, 1/10/50 subscribers, all in this process.
// - throughput: back-to-back 1 MiB segments; MB/s delivered = bytes received by all subscribers /
//   time from the first byte written to the last byte read.
// - latency: 256 KiB segments, the next one starting once every subscriber finished the last;
//   extra latency = subscriber's last byte - publisher's last byte, per (segment, subscriber).
// The 1-subscriber case is the baseline for the ratios.
import { createTrickleServer, type TrickleServer } from '../src/transport/trickle/server.ts';
import { TricklePublisher } from '../src/transport/trickle/publisher.ts';
import { TrickleSubscriber } from '../src/transport/trickle/subscriber.ts';
import { TrickleConfigSchema } from '../src/config.ts';

const FANOUT = [1, 10, 50];
const CHUNK = 16 * 1024;
const THROUGHPUT_SEGMENTS = 20;
const THROUGHPUT_BYTES = 1024 * 1024;
const LATENCY_SEGMENTS = 30;
const LATENCY_BYTES = 256 * 1024;

interface Result {
  subs: number;
  mbps: number;
  medianMs: number;
  p99Ms: number;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function waitParked(server: TrickleServer, channel: string, n: number): Promise<void> {
  let seen = 0;
  await new Promise<void>((resolve) => {
    const on = (e: { channel: string }): void => {
      if (e.channel === channel && ++seen === n) {
        server.events.off('get-open', on);
        resolve();
      }
    };
    server.events.on('get-open', on);
  });
}

/** Starts n subscribers; `onEnd(seq, t)` is called when a subscriber has read a segment's last byte. */
function subscribe(url: string, n: number, onEnd: (seq: number, bytes: number, t: number) => void): { subs: TrickleSubscriber[]; done: Promise<void> } {
  const subs = Array.from({ length: n }, () => new TrickleSubscriber(url, { start: 'next' }));
  const done = Promise.all(
    subs.map(async (s) => {
      for await (const seg of s) {
        let bytes = 0;
        for await (const c of seg.body) bytes += c.length;
        onEnd(seg.seq, bytes, performance.now());
      }
    }),
  ).then(() => undefined);
  return { subs, done };
}

async function writeSegment(pub: TricklePublisher, payload: Buffer): Promise<number> {
  const w = pub.next();
  for (let o = 0; o < payload.length; o += CHUNK) await w.write(payload.subarray(o, o + CHUNK));
  const lastByte = performance.now();
  await w.end();
  return lastByte;
}

async function runOne(n: number): Promise<Result> {
  const server = createTrickleServer({ config: TrickleConfigSchema.parse({ maxSegmentBytes: 8 * 1024 * 1024 }) });
  const { port } = await server.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${port}/`;
  try {
    // throughput
    server.createChannel('tp');
    let delivered = 0;
    let lastRead = 0;
    const tp = subscribe(`${base}tp`, n, (_seq, bytes, t) => {
      delivered += bytes;
      lastRead = t;
    });
    await waitParked(server, 'tp', n);
    const pubTp = new TricklePublisher(`${base}tp`);
    const big = Buffer.alloc(THROUGHPUT_BYTES, 7);
    const t0 = performance.now();
    for (let i = 0; i < THROUGHPUT_SEGMENTS; i++) await writeSegment(pubTp, big);
    await pubTp.close();
    await tp.done;
    const mbps = delivered / 1e6 / ((lastRead - t0) / 1000);

    // latency
    server.createChannel('lat');
    const ends = new Map<number, number[]>();
    let waiter: { seq: number; resolve: () => void } | null = null;
    const lat = subscribe(`${base}lat`, n, (seq, _bytes, t) => {
      const list = ends.get(seq) ?? [];
      list.push(t);
      ends.set(seq, list);
      if (waiter && waiter.seq === seq && list.length === n) waiter.resolve();
    });
    await waitParked(server, 'lat', n);
    const pubLat = new TricklePublisher(`${base}lat`);
    const seg = Buffer.alloc(LATENCY_BYTES, 3);
    const extra: number[] = [];
    for (let i = 0; i < LATENCY_SEGMENTS; i++) {
      const all = new Promise<void>((resolve) => {
        waiter = { seq: i, resolve };
      });
      const lastByte = await writeSegment(pubLat, seg);
      await all;
      for (const t of ends.get(i) ?? []) extra.push(t - lastByte);
    }
    await pubLat.close();
    await lat.done;
    return { subs: n, mbps, medianMs: quantile(extra, 0.5), p99Ms: quantile(extra, 0.99) };
  } finally {
    await server.close();
  }
}

export default {
  name: 'trickle',
  async run(): Promise<void> {
    // one untimed pass so the 1-subscriber baseline is not measured on a cold JIT
    await runOne(1);
    const results: Result[] = [];
    for (const n of FANOUT) results.push(await runOne(n));
    const base = results[0];
    console.log(
      `1 publisher, loopback, one process. Throughput: ${THROUGHPUT_SEGMENTS} x ${THROUGHPUT_BYTES / 1024} KiB segments back to back. ` +
        `Latency: ${LATENCY_SEGMENTS} x ${LATENCY_BYTES / 1024} KiB segments, paced; extra latency = subscriber last byte - publisher last byte.\n`,
    );
    console.log('| subscribers | MB/s delivered (all subs) | x vs 1 sub | extra latency median (ms) | p99 (ms) | median x vs 1 sub |');
    console.log('|---:|---:|---:|---:|---:|---:|');
    for (const r of results) {
      console.log(
        `| ${r.subs} | ${r.mbps.toFixed(0)} | ${(r.mbps / base.mbps).toFixed(2)} | ${r.medianMs.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${(r.medianMs / base.medianMs).toFixed(2)} |`,
      );
    }
  },
};
