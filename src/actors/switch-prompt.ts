// Effect `switchPrompt`: tells the process that runs a stream's pipeline (its own, or the node's
// shared one) which prompt's output to send, as the stream machine decides. Switches are sent one
// after another, each answered with PROMPT_SWITCH_DONE. With no process (it is restarting) there is
// nothing to tell: the next one opens with the machine's active prompt.
import { fromCallback } from 'xstate';
import { errorMessage, type StreamEvent, type SwitchPromptCommand, type SwitchPromptInput } from '../machines/index.ts';
import { sharedProcKey, streamProcKey, type EffectDeps } from './deps.ts';

export function switchPromptLogic(deps: EffectDeps) {
  return fromCallback<SwitchPromptCommand, SwitchPromptInput>(({ input, receive, sendBack }) => {
    const answer = (e: StreamEvent) => sendBack(e);
    const key = input.architecture === 'shared' ? sharedProcKey(deps.config.nodeId) : streamProcKey(input.streamId);
    let last: Promise<void> = Promise.resolve();
    receive(({ promptId, by }) => {
      last = last.then(async () => {
        try {
          const h = deps.procs.get(key);
          if (h) await deps.procs.request(h, { type: 'switch_prompt', streamId: input.streamId, promptId }, deps.config.bus.requestTimeoutMs);
          answer({ type: 'PROMPT_SWITCH_DONE', promptId, by });
        } catch (err) {
          deps.logger.warn({ err, streamId: input.streamId, promptId }, 'prompt switch failed');
          answer({ type: 'PROMPT_SWITCH_DONE', promptId, by, error: errorMessage(err) });
        }
      });
    });
  });
}
