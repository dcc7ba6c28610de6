// `streamfleet serve` as a real subprocess, on the embedded bus and on a real nats-server: it prints
// its ports once ready, runs a stream end to end, and on SIGTERM stops everything it forked.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeClip, probeFramePts, tempDir } from './helpers/clips.ts';
import { startNatsServer, type NatsServerHandle } from './helpers/nats-server.ts';
import { freePort } from './helpers/ports.ts';
import { alive, api } from './helpers/runtime-node.ts';
import { collectOutput, publishClip } from './helpers/stream-io.ts';

const dir = tempDir('sf-serve-');
let clip: string;
let inputPts: number[];
let serve: ChildProcess | undefined;
let nats: NatsServerHandle | undefined;
const workerPids = new Set<number>();

beforeAll(async () => {
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 3, fps: 30, gop: 30, width: 320, height: 240 });
  inputPts = await probeFramePts(clip);
  writeFileSync(join(dir.path, 'config.json'), JSON.stringify({ logLevel: 'warn', actors: { heartbeatIntervalMs: 500, heartbeatMisses: 6 } }));
});
afterAll(() => dir.remove());
afterEach(async () => {
  if (serve && serve.exitCode === null && serve.signalCode === null) {
    serve.kill('SIGKILL');
    await new Promise((r) => serve!.once('exit', r));
  }
  serve = undefined;
  const orphans = [...workerPids].filter(alive);
  for (const pid of orphans) process.kill(pid, 'SIGKILL');
  workerPids.clear();
  await nats?.stop();
  nats = undefined;
  expect(orphans).toEqual([]);
});

interface Ready {
  event: 'ready';
  pid: number;
  port: number;
  trickle_port: number;
  bus: string;
}

async function startServe(extra: string[]): Promise<Ready> {
  const tricklePort = await freePort();
  const child = spawn(
    process.execPath,
    [
      'bin/streamfleet.js',
      'serve',
      '--port', '0',
      '--trickle-port', String(tricklePort),
      '--host', '127.0.0.1',
      '--workspace', join(dir.path, 'ws'),
      '--config', join(dir.path, 'config.json'),
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, SF_LOG_LEVEL: process.env.SF_LOG_LEVEL ?? 'warn' } },
  );
  serve = child;
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<Ready>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`serve exited early with ${code}`)));
    lines.once('line', (l) => resolve(JSON.parse(l) as Ready));
  });
  expect(ready.event).toBe('ready');
  expect(ready.trickle_port).toBe(tricklePort);
  return ready;
}

async function streamThenSigterm(ready: Ready, id: string): Promise<void> {
  const origin = `http://127.0.0.1:${ready.port}`;
  const trickle = `http://127.0.0.1:${ready.trickle_port}`;
  const start = await api(origin, 'POST', '/stream/start', {
    gateway_request_id: id,
    subscribe_url: `${trickle}/${id}-in`,
    publish_url: `${trickle}/${id}-out`,
    params: { width: 256, height: 256 },
  });
  expect(start.status, JSON.stringify(start.json)).toBe(200);
  const st = (await api(origin, 'GET', `/stream/${id}`)).json;
  expect(st.state).toBe('running');
  const pid = st.worker_status.pid as number;
  workerPids.add(pid);
  expect(alive(pid)).toBe(true);

  const out = collectOutput(`${trickle}/${id}-out`, join(dir.path, `${id}.ts`));
  await publishClip(`${trickle}/${id}-in`, clip, { close: false });
  // Another process: its status is the only window, so poll it (bounded) until the frames are out.
  const deadline = Date.now() + 20_000;
  const done = (s: { frame_count: number; stats: { frames_dropped: number } }) => s.frame_count + s.stats.frames_dropped >= inputPts.length;
  while (!done((await api(origin, 'GET', `/stream/${id}`)).json) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
  }
  const exited = new Promise<number | null>((r) => serve!.once('exit', (code) => r(code)));
  serve!.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(alive(pid)).toBe(false);
  const { path } = await out;
  const pts = await probeFramePts(path);
  expect(pts.length).toBeGreaterThan(0);
  const inSet = new Set(inputPts);
  for (const p of pts) expect(inSet.has(p)).toBe(true);
  for (let k = 1; k < pts.length; k++) expect(pts[k]).toBeGreaterThan(pts[k - 1]);
}

describe('streamfleet serve', () => {
  it('runs a stream on the embedded bus and leaves no process behind on SIGTERM', async () => {
    const ready = await startServe(['--node-id', 'solo']);
    expect(ready.bus).toBe('local');
    await streamThenSigterm(ready, 'served');
  }, 120_000);

  it('runs the same stream with --nats against a real nats-server', async () => {
    nats = await startNatsServer();
    const ready = await startServe(['--node-id', 'natsy', '--nats', nats.url]);
    expect(ready.bus).toBe('nats');
    await streamThenSigterm(ready, 'served-nats');
  }, 120_000);
});
