// Effect `warmupWorker`: compiles and warms the worker's prompts in its process. A new worker is
// added (`add_worker`); one the process already holds (a re-warm for a new size) gets
// `update_prompts` with the size. Reports a `warmup` runtime event with its duration.
import { fromPromise } from 'xstate';
import type { WarmupWorkerInput } from '../machines/index.ts';
import type { EffectDeps } from './deps.ts';
import { WorkerGoneError } from './errors.ts';

export function warmupWorkerLogic(deps: EffectDeps) {
  return fromPromise<void, WarmupWorkerInput>(async ({ input, signal }) => {
    const h = deps.procs.byPid(input.pid);
    if (!h) throw new WorkerGoneError(String(input.pid), 'is not running');
    const t0 = performance.now();
    const timeout = deps.config.actors.workerStartTimeoutMs;
    const { prompts } = input;
    const held = h.workers.has(`${input.streamId}/${input.workerId}`);
    const result = held
      ? await deps.procs.request(
          h,
          { type: 'update_prompts', streamId: input.streamId, workerId: input.workerId, prompts, width: input.width, height: input.height },
          timeout,
          signal,
        )
      : await deps.procs.request(h, { type: 'add_worker', streamId: input.streamId, workerId: input.workerId, prompts }, timeout, signal);
    deps.procs.addWorker(h, input.streamId, input.workerId);
    const reported = typeof result.warmupMs === 'number' ? result.warmupMs : undefined;
    deps.emit({ type: 'warmup', streamId: input.streamId, durationMs: reported ?? performance.now() - t0 });
  });
}
