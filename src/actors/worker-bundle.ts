// The worker process as one JavaScript file. Loading the runner's TypeScript through tsx costs a
// forked process about 1.3 s and 1.8 s of CPU and 55 MB of RSS (its loader thread and transforms);
// the same code bundled by esbuild loads in about 0.5 s. The bundle is built once per content of
// src/ (hash of every source file) into node_modules/.cache/streamfleet/, so bare imports of the
// packages it leaves external resolve from the project's node_modules, and it is reused by every
// node started from this tree until a source changes. Concurrent builders write to a temporary
// folder and rename it into place, so no process ever loads a half-written bundle.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC_DIR = fileURLToPath(new URL('..', import.meta.url));
const CACHE_DIR = fileURLToPath(new URL('../../node_modules/.cache/streamfleet/', import.meta.url));
/** Bundle entries: the process entry, and the inference thread's (see inference/threads/inference-thread.ts). */
const ENTRIES = { main: 'runner/main.ts', 'graph-thread': 'inference/threads/graph-thread.ts' } as const;

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sourceFiles(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out.sort();
}

async function sourceHash(): Promise<string> {
  const h = createHash('sha256');
  for (const f of await sourceFiles(SRC_DIR)) {
    h.update(relative(SRC_DIR, f)).update('\0').update(await readFile(f)).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

async function build(): Promise<string> {
  const dir = join(CACHE_DIR, `worker-${await sourceHash()}`);
  const main = join(dir, 'main.mjs');
  if (existsSync(main)) return main;
  const { build: esbuild } = await import('esbuild');
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  await mkdir(tmp, { recursive: true });
  try {
    await esbuild({
      entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([k, v]) => [k, join(SRC_DIR, v)])),
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      // Shared code in chunks, and what is imported lazily (the NATS client) loaded only when used.
      splitting: true,
      chunkNames: 'chunk-[hash]',
      // Stack traces name bundle lines; NODE_OPTIONS=--enable-source-maps maps them back to src/.
      sourcemap: 'linked',
      logLevel: 'silent',
    });
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      // Another builder got there first with the same sources: theirs is as good as ours.
      if (!existsSync(main)) throw err;
      await rm(tmp, { recursive: true, force: true });
    });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return main;
}

let pending: Promise<string> | undefined;

/** Path of the bundled worker entry, built on first use (and again after a failed build). */
export function workerBundle(): Promise<string> {
  pending ??= build().catch((err: unknown) => {
    pending = undefined;
    throw err;
  });
  return pending;
}
