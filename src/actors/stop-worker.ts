// Effect `stopWorker`: ends one worker. When its stream is ending, the process closes the stream's
// pipeline (the output channel is closed); a restart only removes the worker. A process left with no
// workers is ended: `shutdown`, then SIGTERM, then SIGKILL (the node's shared process stays).
// A restart's process is killed at once (see below).
// An abort (the machine gave up waiting) goes straight to SIGKILL.
import { fromPromise } from 'xstate';
import type { StopWorkerInput } from '../machines/index.ts';
import type { EffectDeps, ProcessPlacement } from './deps.ts';

export function stopWorkerLogic(deps: EffectDeps, place: ProcessPlacement) {
  return fromPromise<void, StopWorkerInput>(async ({ input, signal }) => {
    const { procs } = deps;
    const h = procs.byPid(input.pid) ?? (deps.streams.isEnding(input.streamId) ? procs.get(place.key(input.streamId)) : undefined);
    if (!h) return;
    const log = deps.logger.child({ streamId: input.streamId, workerId: input.workerId, procId: h.procId });
    const timeout = deps.config.actors.workerStopGraceMs;
    const ending = deps.streams.isEnding(input.streamId);
    procs.removeWorker(h, input.streamId, input.workerId);
    if (!signal.aborted && h.alive()) {
      await procs
        .request(h, { type: 'remove_worker', streamId: input.streamId, workerId: input.workerId }, timeout, signal)
        .catch((err: unknown) => log.debug({ err }, 'remove_worker failed'));
      if (ending && procs.workersOfStream(h, input.streamId) === 0) {
        h.streams.delete(input.streamId);
        await procs
          .request(h, { type: 'close_stream', streamId: input.streamId }, timeout, signal)
          .catch((err: unknown) => log.debug({ err }, 'close_stream failed'));
      }
    }
    if (h.shared || h.workers.size > 0) return;
    // A restart kills outright: a graceful exit would close the stream's output channel (DELETE),
    // which ends every viewer, while the restarted process goes on publishing to it.
    if (ending) await procs.terminate(h, { graceful: true, signal });
    else await procs.kill(h);
  });
}
