// Effect `watchWorker`: listens to one worker for the whole life of its process. The process's exit
// becomes EXIT; its heartbeats on the bus (from this very pid) become HEARTBEAT. This is the one place
// a heartbeat is parsed: its figures for the stream and the input's end ride along to the stream machine.
import { fromCallback } from 'xstate';
import type { FrameStats, WatchWorkerInput, WorkerEvent } from '../machines/index.ts';
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
          sendBack(heartbeatEvent(hb));
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

/** A parsed heartbeat in the machines' terms. */
export function heartbeatEvent(hb: WorkerHeartbeat): WorkerEvent {
  const { stats } = hb;
  const frames: FrameStats = {
    pid: hb.pid,
    frameCount: stats.frameCount,
    fpsIn: stats.fpsIn,
    fpsOut: stats.fpsOut,
    latencyP50: stats.latencyP50Ms,
    latencyP99: stats.latencyP99Ms,
    drops: Object.values(stats.dropsByReason).reduce((a, b) => a + b, 0),
    dropsByReason: stats.dropsByReason,
    latenciesMs: stats.latenciesMs,
    ...(stats.lastOutputPts !== undefined ? { lastOutputPts: stats.lastOutputPts } : {}),
    ...(stats.lastInputPts !== undefined ? { lastInputPts: stats.lastInputPts } : {}),
  };
  const ended = hb.inputEnded?.reason;
  return { type: 'HEARTBEAT', stats, frames, ...(ended ? { inputEnded: ended === 'input_timeout' ? 'input_timeout' : 'input_ended' } : {}) };
}
