// The prompt as it arrives (ComfyUI "API format": an object, a JSON string of one, or a list of them),
// ComfyStream's normalisation (frame input/output aliases), and the canonical form whose md5 is the
// prompt id. Input values are left `unknown` on purpose: the validator must answer each bad value with
// ComfyUI's own error type, which a schema failure could not.
import { createHash } from 'node:crypto';
import { z } from 'zod';

/** A link to another node's output: [source node id, output slot]. */
export const LinkSchema = z.tuple([z.string(), z.number().int().nonnegative()]);
export type Link = z.infer<typeof LinkSchema>;

/** A literal list; a bare two-element list would read as a link, so lists travel wrapped. */
export const LiteralListSchema = z.object({ __value__: z.array(z.unknown()) });
export type LiteralList = z.infer<typeof LiteralListSchema>;

export const PromptNodeSchema = z.looseObject({
  /** Checked by the validator, which answers ComfyUI's `invalid_prompt` when absent or unknown. */
  class_type: z.unknown().optional(),
  /** Input name -> literal, `{"__value__": [...]}` or link; an absent `inputs` means none. */
  inputs: z.record(z.string(), z.unknown()).optional(),
  /** UI metadata (titles); never affects execution. */
  _meta: z.record(z.string(), z.unknown()).optional(),
});
export type PromptNode = z.infer<typeof PromptNodeSchema>;

/** Node id -> node. */
export const PromptSchema = z.record(z.string(), PromptNodeSchema);
export type Prompt = z.infer<typeof PromptSchema>;

/** A prompt sent as a JSON string (the `params.prompt` form). */
export const PromptJsonSchema = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `not valid JSON: ${(err as Error).message}` });
      return z.NEVER;
    }
  })
  .pipe(PromptSchema);

/** One prompt: an object or a JSON string of one. */
export const PromptSourceSchema = z.union([PromptSchema, PromptJsonSchema]);

/** What the API accepts wherever a prompt goes: one prompt or a list of them. */
export const PromptInputSchema = z.union([PromptSourceSchema, z.array(PromptSourceSchema)]);
export type PromptInput = z.infer<typeof PromptInputSchema>;

/** A node once its class_type is known to be a string. */
export interface ApiNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: Record<string, unknown>;
}
export type ApiPrompt = Record<string, ApiNode>;

export type PromptFormatCode =
  | 'not_json'
  | 'bad_shape'
  | 'too_many_nodes'
  | 'too_many_primary_inputs'
  | 'too_many_inputs'
  | 'too_many_outputs'
  | 'missing_input'
  | 'missing_output';

/** A prompt refused before node validation (shape, size, or ComfyStream's input/output rules). */
export class PromptFormatError extends Error {
  override readonly name = 'PromptFormatError';
  constructor(
    readonly code: PromptFormatCode,
    message: string,
    readonly details: string = '',
  ) {
    super(message);
  }
}

const PRIMARY_INPUT = 'PrimaryInputLoadImage';
const INPUT_CLASSES = new Set(['LoadImage', 'LoadTensor']);
const OUTPUT_CLASSES = new Set(['PreviewImage', 'SaveImage', 'SaveTensor']);

function loadTensorNode(): ApiNode {
  return { class_type: 'LoadTensor', inputs: {}, _meta: { title: 'LoadTensor' } };
}

function saveTensorNode(inputs: Record<string, unknown>): ApiNode {
  return { class_type: 'SaveTensor', inputs, _meta: { title: 'SaveTensor' } };
}

/**
 * ComfyStream's convert_prompt: at most one PrimaryInputLoadImage; without one, exactly one
 * LoadImage/LoadTensor; exactly one PreviewImage/SaveImage/SaveTensor. PrimaryInputLoadImage and a
 * lone LoadImage become LoadTensor, PreviewImage/SaveImage become SaveTensor (keeping their inputs).
 * Returns a new prompt; throws PromptFormatError with ComfyStream's messages.
 */
export function normalizePrompt(prompt: ApiPrompt): ApiPrompt {
  let primary = 0;
  let inputs = 0;
  let outputs = 0;
  const loadImages: string[] = [];
  for (const [id, node] of Object.entries(prompt)) {
    if (node.class_type === PRIMARY_INPUT) primary++;
    else if (INPUT_CLASSES.has(node.class_type)) {
      inputs++;
      if (node.class_type === 'LoadImage') loadImages.push(id);
    } else if (OUTPUT_CLASSES.has(node.class_type)) outputs++;
  }
  if (primary > 1) throw new PromptFormatError('too_many_primary_inputs', 'too many primary inputs in prompt');
  if (primary === 0 && inputs > 1) throw new PromptFormatError('too_many_inputs', 'too many inputs in prompt');
  if (outputs > 1) throw new PromptFormatError('too_many_outputs', 'too many outputs in prompt');
  if (primary + inputs === 0) throw new PromptFormatError('missing_input', 'missing input');
  if (outputs === 0) throw new PromptFormatError('missing_output', 'missing output');

  const out: ApiPrompt = {};
  for (const [id, node] of Object.entries(prompt)) {
    let next: ApiNode = { ...node, inputs: { ...node.inputs } };
    if (node.class_type === PRIMARY_INPUT) next = loadTensorNode();
    else if (primary === 0 && loadImages.length === 1 && id === loadImages[0]) next = loadTensorNode();
    else if (node.class_type === 'PreviewImage' || node.class_type === 'SaveImage') next = saveTensorNode({ ...node.inputs });
    Object.defineProperty(out, id, { value: next, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Deterministic JSON: object keys sorted at every depth, no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  const parts: string[] = [];
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/**
 * The canonical text of a prompt: every node reduced to {class_type, inputs} (titles and other UI
 * metadata do not change what runs), keys sorted. Two prompts differing only in key order or `_meta`
 * share it.
 */
export function canonicalPrompt(prompt: ApiPrompt): string {
  const reduced = Object.fromEntries(
    Object.entries(prompt).map(([id, n]) => [id, { class_type: n.class_type, inputs: n.inputs ?? {} }]),
  );
  return canonicalJson(reduced);
}

/** First 12 hex chars of the md5 of the canonical prompt text. */
export function promptId(canonical: string): string {
  return createHash('md5').update(canonical).digest('hex').slice(0, 12);
}

/** Summarises zod issues as `path: message` lines, for error details. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(prompt)'}: ${i.message}`)
    .join('\n');
}

/**
 * Reads one prompt (object or JSON string) into node id -> node; throws PromptFormatError `not_json`
 * or `bad_shape`. class_type is not checked here (the validator answers ComfyUI's errors for it).
 */
export function parsePrompt(input: unknown): Prompt {
  if (typeof input === 'string') {
    let value: unknown;
    try {
      value = JSON.parse(input);
    } catch (err) {
      throw new PromptFormatError('not_json', 'Prompt is not valid JSON', (err as Error).message);
    }
    return parsePromptObject(value);
  }
  return parsePromptObject(input);
}

function parsePromptObject(input: unknown): Prompt {
  const r = PromptSchema.safeParse(input);
  if (!r.success) {
    throw new PromptFormatError('bad_shape', 'Prompt must be an object mapping node ids to nodes', describeIssues(r.error));
  }
  return r.data;
}
