// Effect `applyPrompts`: swaps a running worker's prompts (the process compiles beside the running
// graph and swaps at a frame boundary; no restart).
import { fromPromise } from 'xstate';
import type { ApplyPromptsInput } from '../machines/index.ts';
import type { EffectDeps } from './deps.ts';
import { WorkerGoneError } from './errors.ts';

export function applyPromptsLogic(deps: EffectDeps) {
  return fromPromise<void, ApplyPromptsInput>(async ({ input, signal }) => {
    const h = deps.procs.byPid(input.pid);
    if (!h) throw new WorkerGoneError(String(input.pid), 'is not running');
        await deps.procs.request(
      h,
      { type: 'update_prompts', streamId: input.streamId, workerId: input.workerId, prompts: input.prompts },
      deps.config.actors.workerStartTimeoutMs,
      signal,
    );
  });
}
