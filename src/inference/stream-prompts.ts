// Turns the prompt fields of a request into validated stream prompts, or a 400 that names every
// failing node and input. Nothing starts or changes when a prompt is refused.
import { ComfyPrompt, type StreamPrompt } from '../stream-spec.ts';
import type { InferenceConfig } from '../config.ts';
import { SfError } from '../errors.ts';
import { validatePrompt } from '../inference/validate.ts';

/** streamfleet's default prompt: the frame, inverted (the seed's default wired it wrongly). */
export const DEFAULT_PROMPT: ComfyPrompt = Object.freeze({
  '1': { class_type: 'LoadTensor', inputs: {} },
  '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
  '3': { class_type: 'SaveTensor', inputs: { images: ['2', 0] } },
});

const PROMPT_INVALID_MESSAGE =
  'The provided prompt references models or values that are not available in this ComfyUI workspace';

/** The prompts a request carries, `prompts` winning over `prompt`; [] when it carries none. */
export function promptsOf(body: { prompt?: unknown; prompts?: unknown }): unknown[] {
  if (body.prompts !== undefined) return Array.isArray(body.prompts) ? body.prompts : [body.prompts];
  if (body.prompt !== undefined) return [body.prompt];
  return [];
}

export interface PromptLimits {
  workspace: string;
  maxNodes: number;
  maxPrompts: number;
  testNodes?: boolean;
}

/** The limits a node validates stream prompts with: its inference settings, in `workspace`. */
export function promptLimits(inference: Readonly<InferenceConfig>, workspace: string): PromptLimits {
  return { workspace, maxNodes: inference.maxPromptNodes, maxPrompts: inference.maxPrompts, testNodes: inference.testNodes };
}

export function validateStreamPrompts(raw: unknown[], opts: PromptLimits): StreamPrompt[] {
  if (raw.length > opts.maxPrompts) {
    throw new SfError('BAD_REQUEST', `Too many prompts: ${raw.length} (at most ${opts.maxPrompts})`);
  }
  const out: StreamPrompt[] = [];
  const errors: Array<Record<string, unknown>> = [];
  raw.forEach((input, index) => {
    const r = validatePrompt(input, { workspace: opts.workspace, maxNodes: opts.maxNodes, testNodes: opts.testNodes });
    if (r.valid) {
      // Validation proved it a prompt of ComfyPrompt's shape.
      const parsed = ComfyPrompt.parse(typeof input === 'string' ? JSON.parse(input) : input);
      out.push({ id: r.promptId, prompt: parsed, graph: r.prompt });
    } else {
      for (const e of r.validation_errors) errors.push(raw.length > 1 ? { ...e, prompt_index: index } : { ...e });
    }
  });
  if (errors.length) throw new SfError('PROMPT_INVALID', PROMPT_INVALID_MESSAGE, { validation_errors: errors });
  return out;
}
