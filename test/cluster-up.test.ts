// `streamfleet cluster up` as a newcomer runs it (issue 11, acceptance 6), on ephemeral ports: the
// real command as a child process, its table read from stdout, every node answering, a stream started
// through node-1 seen from node-2, a node killed and reported while the rest go on, then SIGINT: the command exits 0 with every pid it printed gone
// (and the stream's worker process with them) and its temp dir removed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeClip, tempDir } from './helpers/clips.ts';
import { alive, api } from './helpers/runtime-node.ts';
import { publishClip } from './helpers/stream-io.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

interface Printed {
  nats: Array<{ name: string; url: string; pid: number }>;
  nodes: Array<{ nodeId: string; api: string; trickle: string; nats: string; pid: number }>;
  dir: string;
}

/** The command's stdout up to its "cluster up" line, parsed: rows of whitespace-separated columns. */
function parseTable(out: string): Printed {
  const rows = out.split('\n').map((l) => l.trim().split(/\s+/));
  return {
    nats: rows.filter((r) => /^nats-\d+$/.test(r[0])).map((r) => ({ name: r[0], url: r[1], pid: Number(r[3]) })),
    nodes: rows.filter((r) => /^node-\d+$/.test(r[0])).map((r) => ({ nodeId: r[0], api: r[1], trickle: r[2], nats: r[3], pid: Number(r[4]) })),
    dir: /^state dir: (.+)$/m.exec(out)![1],
  };
}

let dir: ReturnType<typeof tempDir>;
let clip: string;
let cmd: ChildProcess | undefined;
let printed: Printed | undefined;
const abort = new AbortController();

beforeAll(async () => {
  dir = tempDir('sf-cluster-up-');
  clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 20, fps: 30, gop: 30, width: 160, height: 120 });
});
afterAll(async () => {
  abort.abort();
  // Only if the test failed before its own SIGINT: the same stop, then by pid whatever is left.
  if (cmd && cmd.exitCode === null && cmd.signalCode === null) {
    const exited = new Promise((r) => cmd!.once('exit', r));
    cmd.kill('SIGINT');
    const t = setTimeout(() => cmd!.kill('SIGKILL'), 40_000);
    await exited;
    clearTimeout(t);
  }
  for (const p of [...(printed?.nats ?? []), ...(printed?.nodes ?? [])]) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
  dir.remove();
});

describe('streamfleet cluster up', () => {
  it('starts 3 NATS servers and 3 nodes, serves a stream across nodes, and leaves nothing behind on SIGINT', async () => {
    cmd = spawn(process.execPath, ['bin/streamfleet.js', 'cluster', 'up', '--base-port', '0', '--workspace', join(dir.path, 'ws')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SF_LOG_LEVEL: 'warn' },
    });
    const exited = new Promise<number | null>((r) => cmd!.once('exit', (code) => r(code)));
    let out = '';
    let err = '';
    cmd.stderr!.setEncoding('utf8').on('data', (c: string) => {
      if (err.length < 64 * 1024) err += c;
    });
    await new Promise<void>((resolve, reject) => {
      cmd!.once('exit', (code) => reject(new Error(`cluster up exited with ${code}:\n${err}`)));
      cmd!.stdout!.setEncoding('utf8').on('data', (c: string) => {
        out += c;
        if (/^cluster up: /m.test(out)) resolve();
      });
    });
    printed = parseTable(out);
    expect(printed.nats.map((n) => n.name)).toEqual(['nats-1', 'nats-2', 'nats-3']);
    expect(printed.nodes.map((n) => n.nodeId)).toEqual(['node-1', 'node-2', 'node-3']);
    const natsUrls = printed.nats.map((n) => n.url).join(',');
    for (const n of printed.nodes) expect(n.nats).toBe(natsUrls);
    expect(existsSync(printed.dir)).toBe(true);
    expect(out).toMatch(/buckets: sf_streams \(3 replicas, \w+\), sf_nodes \(3 replicas, \w+\)/);

    for (const n of printed.nodes) {
      expect((await api(n.api, 'GET', '/readyz')).status).toBe(200);
      const list = await api(n.api, 'GET', '/streams');
      expect(list.status).toBe(200);
      expect(list.json.count).toBe(0);
    }

    // A stream started through node-1, its channels on node-1's trickle server.
    const [n1, n2] = printed.nodes;
    const id = 'newcomer';
    void publishClip(`${n1.trickle}/${id}-in`, clip, { signal: abort.signal }).catch(() => undefined);
    const start = await api(n1.api, 'POST', '/stream/start', {
      gateway_request_id: id,
      subscribe_url: `${n1.trickle}/${id}-in`,
      publish_url: `${n1.trickle}/${id}-out`,
      params: { width: 128, height: 128 },
    });
    expect(start.status, JSON.stringify(start.json)).toBe(200);
    const viaNode2 = await api(n2.api, 'GET', `/stream/${id}`);
    expect(viaNode2.status, JSON.stringify(viaNode2.json)).toBe(200);
    expect(viaNode2.json).toMatchObject({ request_id: id, state: 'running' });
    const workerPid: number | undefined = viaNode2.json.worker_status?.pid;
    expect((await api(n2.api, 'GET', '/streams')).json.streams[id]).toBeDefined();

    // A node that dies is reported; the command and the other nodes keep running.
    const n3 = printed.nodes[2];
    process.kill(n3.pid, 'SIGKILL');
    await expect.poll(() => err, { timeout: 10_000, interval: 50 }).toContain(`node-3 (pid ${n3.pid}) exited unexpectedly (SIGKILL)`);
    expect(cmd.exitCode).toBeNull();
    for (const n of [n1, n2]) expect((await api(n.api, 'GET', `/stream/${id}`)).json.state).toBe('running');

    cmd.kill('SIGINT');
    expect(await exited, err).toBe(0);
    abort.abort();
    expect(out).toMatch(/cluster stopped/);
    const left = [...printed.nats, ...printed.nodes].filter((p) => alive(p.pid)).map((p) => p.pid);
    expect(left).toEqual([]);
    if (workerPid) expect(alive(workerPid)).toBe(false);
    expect(existsSync(printed.dir)).toBe(false);
  }, 90_000);
});
