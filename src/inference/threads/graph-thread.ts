// The inference thread: compiles prompts (warm, through the thread's graph cache, so equal prompts
// at equal sizes share one compiled graph) and runs frames through them. Started by InferenceThread
// with the tsx loader registered; talks only through parentPort.
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../../log.ts';
import { GraphHost } from './graph-host.ts';
import type { FromThread, ThreadInit, ToThread } from './thread-protocol.ts';

const init = workerData as ThreadInit;
const port = parentPort!;
const log = createLogger(init.logLevel).child({ thread: init.name });
const host = new GraphHost(init, log);

function reply(m: FromThread, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

function failed(id: number, err: unknown): void {
  const code = typeof (err as { code?: unknown })?.code === 'string' ? String((err as { code: string }).code) : 'INTERNAL';
  reply({ op: 'failed', id, code, message: err instanceof Error ? err.message : String(err) });
}

async function handle(m: ToThread): Promise<void> {
  switch (m.op) {
    case 'compile': {
      const c = await host.compile(m.prompt, m.width, m.height);
      reply({ op: 'compiled', id: m.id, ...c });
      return;
    }
    case 'run': {
      const out = await host.run(m.handle, new Uint8Array(m.buf, m.byteOffset, m.byteLength));
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
      await host.release(m.handle);
      reply({ op: 'released', id: m.id });
      return;
    }
  }
}

port.on('message', (m: ToThread) => {
  handle(m).catch((err: unknown) => failed(m.id, err));
});
reply({ op: 'ready' });
