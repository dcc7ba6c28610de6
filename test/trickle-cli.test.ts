import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { run as pull } from '../src/cli/commands/pull.ts';
import { TricklePublisher } from '../src/transport/trickle/publisher.ts';
import { postSegment, startServer, waitEvent, type Running } from './helpers/trickle.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
let children: ChildProcess[] = [];
let running: Running[] = [];
let dirs: string[] = [];
afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  children = [];
  await Promise.all(running.map((r) => r.server.close()));
  running = [];
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  dirs = [];
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sf-trickle-cli-'));
  dirs.push(d);
  return d;
}

describe('trickle CLI commands', () => {
  it('trickle-server serves under its base path and exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, ['bin/streamfleet.js', 'trickle-server', '--port', '0', '--base-path', '/ai/trickle/'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SF_LOG_LEVEL: 'silent' },
    });
    children.push(child);
    const lines = createInterface({ input: child.stdout! });
    const [line] = (await once(lines, 'line')) as [string];
    const m = /^listening (http:\/\/127\.0\.0\.1:\d+\/ai\/trickle\/)$/.exec(line);
    expect(m, line).not.toBeNull();
    const base = m![1];
    expect((await postSegment(base, 'ch', 0, 'over the wire')).status).toBe(200);
    expect(await (await fetch(`${base}ch/0`)).text()).toBe('over the wire');
    const exited = once(child, 'exit');
    process.kill(child.pid!, 'SIGTERM');
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
  });

  it('trickle-server --no-auto-create answers 404 to a publish', async () => {
    const child = spawn(process.execPath, ['bin/streamfleet.js', 'trickle-server', '--port', '0', '--no-auto-create'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SF_LOG_LEVEL: 'silent' },
    });
    children.push(child);
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
    const base = line.replace(/^listening /, '');
    expect((await fetch(`${base}ch/0`, { method: 'POST', body: 'x' })).status).toBe(404);
    const exited = once(child, 'exit');
    process.kill(child.pid!, 'SIGINT');
    expect(((await exited) as [number | null])[0]).toBe(0);
  });

  it('pull writes every segment, concatenated, until the channel closes, and exits 0', async () => {
    const r = await startServer();
    running.push(r);
    const pub = new TricklePublisher(`${r.base}ch`);
    const parts = ['seg-zero|', 'seg-one|', 'seg-two'];
    for (const p of parts) await pub.writeSegment(Buffer.from(p));
    const out = join(await tmp(), 'out.ts');
    const pulling = pull([`${r.base}ch`, out, '--from', '0', '--timeout', '60']);
    await waitEvent(r.server, 'get-open', (e) => e.seq === 3);
    await fetch(`${r.base}ch`, { method: 'DELETE' });
    expect(await pulling).toBe(0);
    expect(await readFile(out, 'utf8')).toBe(parts.join(''));
    await pub.close();
  });

  it('pull stops at --timeout with exit 0, and rejects bad arguments with 2', async () => {
    const r = await startServer();
    running.push(r);
    r.server.createChannel('quiet');
    const out = join(await tmp(), 'quiet.ts');
    expect(await pull([`${r.base}quiet`, out, '--timeout', '0.2'])).toBe(0);
    expect(await readFile(out, 'utf8')).toBe('');
    expect(await pull([`${r.base}quiet`])).toBe(2);
    expect(await pull([`${r.base}quiet`, out, '--from', 'yesterday'])).toBe(2);
    expect(await pull(['not a url', out])).toBe(2);
  });
});
