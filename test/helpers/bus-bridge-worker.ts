// Forked by tests as a stand-in worker process: joins the parent's bus over IPC, answers on its
// inbox, serves a queue group, publishes events and heartbeats, writes KV, on command.
import { connectParentBus } from '../../src/transport/local/bridge-child.ts';
import { subjects } from '../../src/transport/subjects.ts';

type Cmd =
  | { op: 'echo'; x: unknown }
  | { op: 'publish'; n: number }
  | { op: 'kv'; bucket: string; key: string; value: unknown }
  | { op: 'garbage' }
  | { op: 'close' };

const streamId = process.argv[2] ?? 's1';
// No NATS URL configured: the worker joins its parent's embedded bus over IPC.
const bus = await connectParentBus({});

const inbox = bus.subscribe(subjects.procCmd(streamId));
const service = bus.subscribe('svc.work', { queue: 'svc' });

void (async () => {
  for await (const m of service) m.respond({ by: 'child', n: m.json() });
})();

void (async () => {
  for await (const m of inbox) {
    const cmd = m.json<Cmd>();
    switch (cmd.op) {
      case 'echo':
        m.respond({ echo: cmd.x, pid: process.pid });
        break;
      case 'publish':
        for (let i = 0; i < cmd.n; i++) bus.publish(subjects.streamEvt(streamId), { i });
        m.respond({ published: cmd.n });
        break;
      case 'kv': {
        const kv = await bus.kv(cmd.bucket);
        m.respond({ revision: await kv.put(cmd.key, cmd.value) });
        break;
      }
      case 'garbage':
        // Malformed envelopes the parent must drop without falling over.
        process.send?.({ sfbus: 1, op: 'bogus' });
        process.send?.({ sfbus: 1, op: 'pub', subject: 42 });
        process.send?.({ sfbus: 1, op: 'pub', subject: 'a..b', data: '' });
        process.send?.({ sfbus: 1, op: 'sub', sid: 999, subject: 'a.>.b' });
        process.send?.({ unrelated: 'message' });
        m.respond({ sent: true });
        break;
      case 'close':
        m.respond({ closing: true });
        await bus.flush();
        await bus.close();
        break;
    }
  }
})();

await bus.flush();
bus.publish(subjects.workerHb(streamId, 0), { ready: true, pid: process.pid });
