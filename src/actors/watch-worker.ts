// Effect `watchWorker`: listens to one worker for the whole life of its process. The process's exit
// becomes EXIT; its heartbeats on the bus (from this very pid) become HEARTBEAT with the stats.
import { fromCallback } from 'xstate';
import type { WatchWorkerInput, WorkerEvent } from '../machines/index.ts';
import { subjects } from '../transport/subjects.ts';
import { WorkerHeartbeat } from '../transport/worker-protocol.ts';
import type { EffectDeps } from './deps.ts';

export function watchWorkerLogic(deps: EffectDeps) {
  return fromCallback<WorkerEvent, WatchWorkerInput>(({ input, sendBack }) => {
    const log = deps.logger.child({ streamId: input.streamId, workerId: input.workerId });
    const h = deps.procs.byPid(input.pid);
    if (!h || !h.alive()) {
      const e = h?.exitInfo ?? { code: null, signal: null };
      // Deferred: an event sent back during the callback's own start would be lost.
      queueMicrotask(() => sendBack({ type: 'EXIT', code: e.code, signal: e.signal }));
      return () => undefined;
    }
    let stopped = false;
    void h.exited.then((e) => {
      if (!stopped) sendBack({ type: 'EXIT', code: e.code, signal: e.signal });
    });
    const sub = deps.bus.subscribe(subjects.workerHb(input.streamId, input.workerId));
    void (async () => {
      try {
        for await (const m of sub) {
          let hb: WorkerHeartbeat;
          try {
            hb = WorkerHeartbeat.parse(m.json());
          } catch (err) {
            log.warn({ err }, 'bad heartbeat ignored');
            continue;
          }
          // A heartbeat from an earlier incarnation (still draining) is not a sign of life.
          if (hb.pid !== input.pid || stopped) continue;
          sendBack({ type: 'HEARTBEAT', stats: hb.stats });
        }
      } catch (err) {
        if (!stopped) log.warn({ err }, 'heartbeat subscription ended');
      }
    })();
    return () => {
      stopped = true;
      sub.unsubscribe();
    };
  });
}
