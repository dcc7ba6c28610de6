// The dashboard in a real browser: `streamfleet serve` as a child process (as `npm start` runs it,
// with a bearer token), three real streams fed over real trickle in real time, and headless system
// Chromium on the page. It checks what an operator sees: every stream listed with live thumbnails
// and figures, the selected stream's output playing in <video>, a worker killed with SIGKILL shown
// restarting then running in the diagram and the event log, and a bad prompt refused beside the node
// it names with nothing started. The page may reach the service's origin only. Screenshots go to
// test-artifacts/dashboard/. Every process started here (service, workers, Chromium) is stopped by
// PID before the file ends.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeClip, tempDir } from './helpers/clips.ts';
import { launchChromium, type TestBrowser } from './helpers/browser.ts';
import { alive } from './helpers/runtime-node.ts';
import { startServe, type ServeProc } from './helpers/serve-proc.ts';
import { publishClip } from './helpers/stream-io.ts';

// The callbacks given to page.evaluate() run in the browser; this file compiles without the DOM lib.
declare const document: any;
declare const window: any;
declare const MutationObserver: any;

const TOKEN = 'dashboard-test-token';
const IDS = ['cam-a', 'cam-b', 'cam-c'];
const SIZE = 256;
const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'dashboard');
const INVERT = {
  '1': { class_type: 'LoadTensor', inputs: {} },
  '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
  '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } },
};
const BLUR = {
  '1': { class_type: 'LoadTensor', inputs: {} },
  '3': { class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 3, sigma: 2 } },
  '4': { class_type: 'SaveTensor', inputs: { images: ['3', 0] } },
};
/** ComfyUI's ImageBlur at node 3 without its required `sigma`. */
const BLUR_WITHOUT_SIGMA = {
  '1': { class_type: 'LoadTensor', inputs: {} },
  '3': { class_type: 'ImageBlur', inputs: { image: ['1', 0], blur_radius: 3 } },
  '4': { class_type: 'SaveTensor', inputs: { images: ['3', 0] } },
};

const dir = tempDir('sf-dash-');
let serve: ServeProc | undefined;
let chrome: TestBrowser | undefined;
let page: Page;
const publishing = new AbortController();
const publishers: Promise<unknown>[] = [];
const requests: string[] = [];
const pageErrors: string[] = [];
const workerPids = new Set<number>();

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(serve!.origin + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const clip = await makeClip(join(dir.path, 'in.ts'), { seconds: 90, fps: 25, gop: 25, width: SIZE, height: SIZE, text: 'dashboard' });
  serve = await startServe(dir.path, { logLevel: 'warn', actors: { heartbeatIntervalMs: 500, heartbeatMisses: 6, restartBackoffBaseMs: 100 } }, ['--auth-token', TOKEN]);
  // The streams start side by side, each with its input published in real time from now on.
  await Promise.all(
    IDS.map(async (id) => {
      const r = await api('POST', '/stream/start', {
        gateway_request_id: id,
        subscribe_url: `${serve!.trickle}/${id}-in`,
        publish_url: `${serve!.trickle}/${id}-out`,
        // The last one holds two prompts, both warm (prompt-worker): the page can switch between them.
        params: { width: SIZE, height: SIZE, ...(id === IDS[2] ? { use_prompt_worker: true, prompts: [INVERT, BLUR] } : {}) },
      });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      publishers.push(publishClip(`${serve!.trickle}/${id}-in`, clip, { signal: publishing.signal, close: false }).catch(() => undefined));
      const st = await api('GET', `/stream/${id}`);
      workerPids.add(st.json.worker_status.pid);
    }),
  );
  chrome = await launchChromium();
  page = await chrome.context.newPage();
  await page.setViewportSize({ width: 1400, height: 1000 });
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => pageErrors.push(e.message));
}, 90_000);

afterAll(async () => {
  const closed = await chrome?.close();
  publishing.abort();
  await Promise.allSettled(publishers);
  const stopped = await serve?.stop();
  const leftWorkers = [...workerPids].filter(alive);
  for (const p of leftWorkers) process.kill(p, 'SIGKILL');
  dir.remove();
  expect(closed?.killed ?? [], 'chromium processes that needed SIGKILL').toEqual([]);
  expect(stopped?.code, 'serve exit code on SIGTERM').toBe(0);
  expect(stopped?.orphans ?? [], 'processes the service left behind').toEqual([]);
  expect(leftWorkers, 'worker processes still alive').toEqual([]);
}, 60_000);

describe('the dashboard in a real browser', () => {
  it('asks for the token, then lists every stream with live thumbnails, fps and latency', async () => {
    await page.goto(`${serve!.origin}/`);
    await page.waitForSelector('#login[open]');
    await page.fill('#login input[name=token]', 'not-the-token');
    await page.click('#login button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#login-error')?.textContent?.includes('refused'));
    await page.fill('#login input[name=token]', TOKEN);
    await page.click('#login button[type=submit]');
    for (const id of IDS) await page.waitForSelector(`.stream[data-id="${id}"] .state.state-running`, { timeout: 15_000 });
    // No stream selected yet: no detail panel.
    expect(await page.isVisible('#detail')).toBe(false);
    // The session cookie is HttpOnly: the page's scripts never see it.
    expect(await page.evaluate(() => document.cookie)).toBe('');

    // Every row, both sides: a thumbnail loads, then a newer one replaces it.
    const seqs = async () =>
      page.$$eval('img.thumb', (imgs: any[]) =>
        imgs.map((i) => ({ id: (i.closest('.stream') as any).dataset.id, cls: i.className, seq: Number((i as any).dataset.seq || 0), w: (i as any).naturalWidth })),
      );
    // Each shows a whole 160 px JPEG.
    await page.waitForFunction((n) => [...document.querySelectorAll('img.thumb')].filter((i: any) => i.dataset.seq && i.naturalWidth === 160).length === n, IDS.length * 2, { timeout: 10_000 });
    const first = await seqs();
    expect(first).toHaveLength(IDS.length * 2);
    await page.waitForFunction(
      (before) => [...document.querySelectorAll('img.thumb')].every((i: any, k: number) => Number((i as any).dataset.seq || 0) > before[k]),
      first.map((t) => t.seq),
      { timeout: 10_000 },
    );

    // Figures: record each row's stats updates in the page for 4 s.
    const updates = await page.evaluate(async () => {
      const seen: Record<string, Array<{ at: number; fps: string; p99: string }>> = {};
      const rows = [...document.querySelectorAll('.stream')];
      const obs = new MutationObserver((ms: any[]) => {
        for (const m of ms) {
          const row = m.target as any;
          (seen[row.dataset.id!] ??= []).push({ at: Date.now(), fps: row.querySelector('.fps-out')!.textContent!, p99: row.querySelector('.lat-p99')!.textContent! });
        }
      });
      for (const r of rows) obs.observe(r, { attributes: true, attributeFilter: ['data-stats-at'] });
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, 4_000));
      obs.disconnect();
      return { t0, t1: Date.now(), seen };
    });
    for (const id of IDS) {
      const u = updates.seen[id] ?? [];
      const times = [updates.t0, ...u.map((x) => x.at), updates.t1];
      const gaps = times.slice(1).map((t, i) => t - times[i]);
      expect(u.length, `${id}: stats updates in 4 s`).toBeGreaterThanOrEqual(4);
      expect(Math.max(...gaps), `${id}: longest wait between updates (ms)`).toBeLessThanOrEqual(1_000);
      for (const x of u) {
        expect(Number(x.fps), `${id} fps out`).toBeGreaterThan(0);
        expect(Number(x.p99), `${id} latency p99`).toBeGreaterThan(0);
      }
    }
    // The sparklines draw the samples.
    expect(await page.$$eval('svg.spark-fps polyline', (ls: any[]) => ls.length)).toBeGreaterThanOrEqual(IDS.length * 2);
    await shot('1-streams');
  });

  it("plays the selected stream's output live in a <video>", async () => {
    await page.click(`.stream[data-id="${IDS[0]}"] a.sid`);
    await page.waitForSelector('#detail:not([hidden])');
    expect(await page.isVisible('#detail')).toBe(true);
    // A dedicated stream has no prompts to switch between.
    expect(await page.isVisible('#switch-form')).toBe(false);
    await page.waitForFunction(() => (document.querySelector('#player') as any).currentTime > 0.2, undefined, { timeout: 15_000 });
    const a = await page.evaluate(() => (document.querySelector('#player') as any).currentTime);
    await page.waitForTimeout(2_500);
    const v = await page.evaluate(() => {
      const el = document.querySelector('#player') as any;
      return { t: el.currentTime, w: el.videoWidth, h: el.videoHeight, paused: el.paused, readyState: el.readyState };
    });
    expect(v.w).toBe(SIZE);
    expect(v.h).toBe(SIZE);
    expect(v.paused).toBe(false);
    expect(v.t - a, 'seconds of video played in 2.5 s').toBeGreaterThan(1.5);
    await shot('2-stream-video');
  });

  it('shows a worker killed with SIGKILL restarting, then running, in the diagrams and the event log within 2 s', async () => {
    const id = IDS[0];
    await page.waitForSelector('.diagram-worker .state.active-leaf[data-state-id^="worker.live.running"]');
    await page.waitForSelector('.diagram-stream .state.active-leaf[data-state-id="stream.active.running.flowing"]');
    const shownPid = Number(await page.textContent(`.stream[data-id="${id}"] .pids`));
    const st = await api('GET', `/stream/${id}`);
    expect(shownPid).toBe(st.json.worker_status.pid);
    await page.evaluate(() => {
      const w = window as unknown as { __states: Array<[number, string]>; __log: Array<[number, string]> };
      w.__states = [];
      w.__log = [];
      new MutationObserver((ms: any[]) => {
        for (const m of ms) {
          const g = m.target as any;
          if (g.classList.contains('active-leaf')) w.__states.push([Date.now(), (g as any).dataset.stateId ?? g.getAttribute('data-state-id')!]);
        }
      }).observe(document.querySelector('#diagrams')!, { attributes: true, attributeFilter: ['class'], subtree: true });
      new MutationObserver((ms: any[]) => {
        for (const m of ms) for (const n of m.addedNodes) if ((n as any).matches?.('li.state')) w.__log.push([Date.now(), n.textContent ?? '']);
      }).observe(document.querySelector('#events')!, { childList: true });
    });
    const videoAtKill = await page.evaluate(() => document.querySelector('#player').currentTime);
    const killedAt = Date.now();
    process.kill(shownPid, 'SIGKILL');
    // Running again after restarting, in both diagrams.
    await page.waitForFunction(
      () => {
        const w = window as unknown as { __states: Array<[number, string]> };
        const s = w.__states.map(([, x]) => x);
        const i = s.findIndex((x) => x.startsWith('worker.restarting'));
        const j = s.findIndex((x) => x === 'stream.active.restarting');
        return i >= 0 && j >= 0 && s.slice(i).some((x) => x.startsWith('worker.live.running')) && s.slice(j).includes('stream.active.running.flowing');
      },
      undefined,
      { timeout: 15_000, polling: 50 },
    );
    const { states, log } = await page.evaluate(() => {
      const w = window as unknown as { __states: Array<[number, string]>; __log: Array<[number, string]> };
      return { states: w.__states, log: w.__log };
    });
    const at = (pred: (x: string) => boolean, from = 0) => {
      const hit = states.find(([t, x]) => t >= from && pred(x));
      return hit ? hit[0] - killedAt : Infinity;
    };
    const workerRestarting = at((x) => x.startsWith('worker.restarting'));
    const streamRestarting = at((x) => x === 'stream.active.restarting');
    const workerRunning = at((x) => x.startsWith('worker.live.running'), killedAt + workerRestarting);
    const streamRunning = at((x) => x === 'stream.active.running.flowing', killedAt + streamRestarting);
    const logAt = (re: RegExp) => {
      const hit = log.find(([, t]) => re.test(t));
      return hit ? hit[0] - killedAt : Infinity;
    };
    const logRestarting = logAt(/^\S+ stream: active\.running\.\w+ → active\.restarting$/);
    const logRunning = logAt(/^\S+ stream: active\.restarting → active\.running\.flowing$/);
    const logWorkerRestarting = logAt(/^\S+ worker \S+: live\.running\.\S+ .*→ restarting\./);
    console.log(
      `kill -9 -> page (ms): worker diagram restarting ${workerRestarting}, running ${workerRunning}; stream diagram restarting ${streamRestarting}, running ${streamRunning}; ` +
        `event log restarting ${logRestarting} (worker ${logWorkerRestarting}), running ${logRunning}`,
    );
    for (const [what, ms] of Object.entries({ workerRestarting, streamRestarting, workerRunning, streamRunning, logRestarting, logWorkerRestarting, logRunning })) {
      expect(ms, `${what}: ms after the kill`).toBeLessThanOrEqual(2_000);
    }
    expect(workerRunning).toBeGreaterThanOrEqual(workerRestarting);
    expect(logRunning).toBeGreaterThanOrEqual(logRestarting);
    // The page shows the new worker's pid and the restart.
    await page.waitForFunction((old) => {
      const t = document.querySelector('.stream[data-id="cam-a"] .pids')?.textContent;
      return !!t && t !== '–' && t !== String(old);
    }, shownPid);
    const newPid = Number(await page.textContent(`.stream[data-id="${id}"] .pids`));
    workerPids.add(newPid);
    expect(newPid).not.toBe(shownPid);
    expect(Number(await page.textContent(`.stream[data-id="${id}"] .restarts`))).toBeGreaterThanOrEqual(1);
    // The output goes on after the restart: the video plays on (the player reconnects if it must).
    await page.waitForFunction((t) => document.querySelector('#player').currentTime > t + 1, videoAtKill, { timeout: 15_000 });
    await shot('3-after-kill');
  });

  it('switches the prompt of a prompt-worker stream', async () => {
    const id = IDS[2];
    await page.click(`.stream[data-id="${id}"] a.sid`);
    await page.waitForSelector('#switch-form:not([hidden])');
    expect(await page.isVisible('#switch-form')).toBe(true);
    const st = (await api('GET', `/stream/${id}`)).json;
    expect(st.prompt_ids).toHaveLength(2);
    const other = st.prompt_ids.find((p: string) => p !== st.active_prompt_id);
    await page.waitForFunction((n) => document.querySelectorAll('#switch-select option').length === n, 2);
    await page.selectOption('#switch-select', other);
    await page.click('#switch-form button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#action-result')?.classList.contains('ok') && /active: /.test(document.querySelector('#action-result').textContent));
    expect(await page.textContent('#action-result')).toContain(`(active: ${other})`);
    await page.waitForFunction(([sid, p]) => document.querySelector(`.stream[data-id="${sid}"] .prompt`)?.textContent === p, [id, other]);
    expect((await api('GET', `/stream/${id}`)).json.active_prompt_id).toBe(other);
    await shot('4-switched-prompt');
  });

  it('updates prompts (a bad one is refused beside its node), restarts the worker and stops a stream', async () => {
    const id = IDS[1];
    await page.click(`.stream[data-id="${id}"] a.sid`);
    await page.waitForFunction((sid) => document.querySelector('#detail-id')?.textContent === sid, id);
    const before = (await api('GET', `/stream/${id}`)).json;
    // A bad prompt first: nothing changes, and the error is beside node 3.
    await page.fill('#update-prompt', JSON.stringify(BLUR_WITHOUT_SIGMA));
    await page.click('#update-form button[type=submit]');
    await page.waitForFunction(() => (document.querySelector('#update-errors li[data-node-id="3"] .node-errors')?.textContent ?? '') !== '');
    expect(await page.textContent('#update-errors li[data-node-id="3"] .node-errors')).toBe('Required input is missing: sigma');
    expect((await api('GET', `/stream/${id}`)).json.active_prompt_id).toBe(before.active_prompt_id);
    // Then a good one: swapped live, same worker process.
    await page.fill('#update-prompt', JSON.stringify(BLUR));
    await page.click('#update-form button[type=submit]');
    await page.waitForFunction(() => /Prompts updated/.test(document.querySelector('#action-result')?.textContent ?? ''), undefined, { timeout: 20_000 });
    expect(await page.$$eval('#update-errors > *', (els: any[]) => els.length)).toBe(0);
    const updated = (await api('GET', `/stream/${id}`)).json;
    expect(updated.active_prompt_id).not.toBe(before.active_prompt_id);
    expect(updated.worker_status.pid).toBe(before.worker_status.pid);
    await page.waitForFunction(([sid, p]) => document.querySelector(`.stream[data-id="${sid}"] .prompt`)?.textContent === p, [id, updated.active_prompt_id]);
    // Restart: a new worker process, shown in the row.
    await page.click('#act-restart');
    await page.waitForFunction(() => /worker restarted/.test(document.querySelector('#action-result')?.textContent ?? ''), undefined, { timeout: 20_000 });
    const restarted = (await api('GET', `/stream/${id}`)).json;
    workerPids.add(restarted.worker_status.pid);
    expect(restarted.worker_status.pid).not.toBe(before.worker_status.pid);
    await page.waitForFunction(([sid, pid]) => document.querySelector(`.stream[data-id="${sid}"] .pids`)?.textContent === String(pid), [id, restarted.worker_status.pid]);
    // Stop: the stream ends; the page shows it terminated.
    await page.click('#act-stop');
    await page.waitForFunction(() => /stopped successfully/.test(document.querySelector('#action-result')?.textContent ?? ''), undefined, { timeout: 20_000 });
    await page.waitForSelector(`.stream[data-id="${id}"] .state.state-terminated`, { timeout: 5_000 });
    expect((await api('GET', `/stream/${id}`)).json.state).toBe('terminated');
    await shot('5-updated-restarted-stopped');
  });

  it("refuses the ImageBlur prompt without sigma beside node 3, with ComfyUI's error, and starts nothing", async () => {
    const before = await api('GET', '/streams');
    await page.click('#open-start');
    await page.waitForSelector('#start-dialog[open]');
    await page.fill('#start-form input[name=id]', 'blur-no-sigma');
    // The channel URLs default to this node's trickle server.
    expect(await page.inputValue('#start-form input[name=subscribe_url]')).toBe(`${serve!.trickle}/blur-no-sigma-in`);
    await page.fill('#start-form textarea[name=prompt]', JSON.stringify(BLUR_WITHOUT_SIGMA, null, 2));
    await page.click('#start-submit');
    const node3 = '#start-errors li[data-node-id="3"] .node-errors';
    await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent ?? '') !== '', node3);
    expect(await page.textContent(node3)).toBe('Required input is missing: sigma');
    expect(await page.textContent('#start-errors li[data-node-id="3"] .node-type')).toBe('ImageBlur');
    for (const other of ['1', '4']) expect(await page.textContent(`#start-errors li[data-node-id="${other}"] .node-errors`)).toBe('');
    expect(await page.textContent('#start-errors p.error')).toContain('Prompt validation failed');
    expect(await page.textContent('#start-result')).toContain('400');
    expect(await page.isVisible('#start-dialog')).toBe(true);
    await shot('6-bad-prompt');
    // Nothing started: no such stream, the same streams, no new process.
    expect((await api('GET', '/stream/blur-no-sigma')).status).toBe(404);
    const after = await api('GET', '/streams');
    expect(Object.keys(after.json.streams).sort()).toEqual(Object.keys(before.json.streams).sort());
    expect(after.json.count).toBe(before.json.count);
    await page.click('#start-cancel');
  });

  it('loaded nothing from anywhere but the service', () => {
    const origins = new Set(requests.map((u) => (u.startsWith('data:') ? 'data:' : new URL(u).origin)));
    origins.delete('data:');
    expect([...origins]).toEqual([serve!.origin]);
    expect(requests.some((u) => u.endsWith('/ui/vendor/mpegts/mpegts.js'))).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});
