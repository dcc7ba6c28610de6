// The inference thread: compiles prompts (warm, through the thread's graph cache, so equal prompts
// at equal sizes share one compiled graph) and runs frames through them. Started by InferenceThread
// with the tsx loader registered; talks only through parentPort.
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../../log.ts';
import { compileGraph, type CompiledGraph } from '../compile.ts';
import { SessionCache } from '../sessions.ts';
import type { FromThread, ThreadInit, ToThread } from './thread-protocol.ts';

const init = workerData as ThreadInit;
const port = parentPort!;
const log = createLogger(init.logLevel).child({ thread: init.name });
const cache = new SessionCache<CompiledGraph>(init.config.sessionCacheSize);
const handles = new Map<number, CompiledGraph>();
let nextHandle = 1;

function reply(m: FromThread, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

function failed(id: number, err: unknown): void {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? String((err as { code: string }).code) : 'internal';
  reply({ op: 'failed', id, code, message: err instanceof Error ? err.message : String(err) });
}

async function handle(m: ToThread): Promise<void> {
  switch (m.op) {
    case 'compile': {
      const t0 = performance.now();
      const g = await compileGraph(m.prompt, {
        width: m.width,
        height: m.height,
        workspace: init.workspace,
        provider: init.provider,
        config: init.config,
        cache,
        logger: log,
      });
      // Another holder of the very same compiled graph: equal prompt and size, shared.
      const shared = [...handles.values()].includes(g);
      const h = nextHandle++;
      handles.set(h, g);
      reply({ op: 'compiled', id: m.id, handle: h, ms: performance.now() - t0, outWidth: g.output.width, outHeight: g.output.height, shared });
      return;
    }
    case 'run': {
      const g = handles.get(m.handle);
      if (!g) throw Object.assign(new Error(`no graph handle ${m.handle}`), { code: 'disposed' });
      const out = await g.run(new Uint8Array(m.buf, m.byteOffset, m.byteLength));
      let d = out.data;
      const msg = (v: Uint8Array): FromThread => ({ op: 'ran', id: m.id, buf: v.buffer as ArrayBuffer, byteOffset: v.byteOffset, byteLength: v.byteLength, width: out.width, height: out.height });
      try {
        // onnxruntime hands back a tensor that owns its ArrayBuffer: it moves back without a copy.
        reply(msg(d), [d.buffer as ArrayBuffer]);
      } catch {
        // A buffer that cannot be moved (external memory of a host op): one copy, then move that.
        d = d.slice();
        reply(msg(d), [d.buffer as ArrayBuffer]);
      }
      return;
    }
    case 'release': {
      const g = handles.get(m.handle);
      handles.delete(m.handle);
      await g?.dispose();
      reply({ op: 'released', id: m.id });
      return;
    }
  }
}

port.on('message', (m: ToThread) => {
  handle(m).catch((err: unknown) => failed(m.id, err));
});
reply({ op: 'ready' });
