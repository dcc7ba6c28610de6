// The system Chromium (Debian's `chromium`, installed by scripts/ensure-test-deps.sh), headless, in a
// fresh temp profile, driven by playwright-core over the DevTools protocol. We start the process
// ourselves so we own its pid: close() ends it and every process it forked, by PID, and removes the
// profile. The flags keep it off the network (no background fetches, updates, sync, QUIC).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { alive, descendants } from '../../bench/glass/procstat.ts';

export const CHROMIUM = process.env.SF_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
  '--mute-audio',
  '--autoplay-policy=no-user-gesture-required',
];

export interface TestBrowser {
  browser: Browser;
  context: BrowserContext;
  pid: number;
  /** Every pid of the browser seen so far (the main process and its children). */
  pids: Set<number>;
  close(): Promise<{ killed: number[] }>;
}

export async function launchChromium(timeoutMs = 20_000): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-test-deps.sh (it installs Debian's chromium)`);
  const profile = mkdtempSync(join(tmpdir(), 'sf-chromium-'));
  const proc: ChildProcess = spawn(CHROMIUM, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', 'about:blank'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const pid = proc.pid ?? -1;
  const pids = new Set<number>([pid]);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const kill = async (): Promise<number[]> => {
    for (const p of descendants(pid)) pids.add(p);
    if (alive(pid)) proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
    // Its helpers (zygotes, renderer, utility processes) follow the browser process out.
    const deadline = Date.now() + 3_000;
    while ([...pids].some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const left = [...pids].filter(alive);
    for (const p of left) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(profile, { recursive: true, force: true });
    return left;
  };
  let ws: string;
  try {
    ws = await new Promise<string>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`chromium printed no DevTools endpoint within ${timeoutMs} ms: ${buf.slice(-500)}`)), timeoutMs);
      proc.stderr!.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(buf);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`chromium exited with ${code} before it listened: ${buf.slice(-500)}`));
      });
    });
  } catch (err) {
    await kill();
    throw err;
  }
  // Its stderr keeps talking (GPU, D-Bus): keep reading so it never blocks on a full pipe.
  proc.stderr!.resume();
  const browser = await chromium.connectOverCDP(ws);
  const context = browser.contexts()[0] ?? (await browser.newContext());
  return {
    browser,
    context,
    pid,
    pids,
    async close() {
      for (const p of descendants(pid)) pids.add(p);
      await browser.close().catch(() => undefined);
      return { killed: await kill() };
    },
  };
}
