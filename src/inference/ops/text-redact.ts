// TextRedact node (streamfleet's own, declared in ../nodes.ts): image, and the optional mode,
// threshold, padding, blur_radius, which take the registry's defaults when a prompt leaves them
// out. `padding` dilates the detector's text kernels: DB probability maps mark a shrunk core of
// each text line (PaddleOCR unclips boxes by 1.5x afterwards), so about half a line height covers
// whole glyphs. See ../text-redact.ts for the pipeline.
import { nodeDefinitions, REDACT_MODES } from '../nodes.ts';
import { createTextRedactor } from '../text-redact.ts';
import type { ResolvedNode } from '../types.ts';
import { comboInput, numInput, type HostOp } from './types.ts';

const OPTIONAL = nodeDefinitions({ models: [] }).TextRedact.INPUT_TYPES.optional ?? {};

/** The node with every optional input it leaves out set to the registry's default. */
function withDefaults(node: ResolvedNode): ResolvedNode {
  const inputs = { ...node.inputs };
  for (const [name, spec] of Object.entries(OPTIONAL)) {
    const def = spec[1]?.default;
    if (inputs[name] === undefined && def !== undefined) inputs[name] = def;
  }
  return { ...node, inputs };
}

export const textRedact: HostOp = {
  kind: 'host',
  imageInputs: ['image'],
  create(raw, sizes, env) {
    const node = withDefaults(raw);
    const params = {
      threshold: numInput(node, 'threshold', 0, 1),
      padding: numInput(node, 'padding', 0, 64, true),
      mode: comboInput(node, 'mode', REDACT_MODES),
      blurRadius: numInput(node, 'blur_radius', 1, 63, true),
    };
    return createTextRedactor(sizes.image, params, env, node.id);
  },
};
