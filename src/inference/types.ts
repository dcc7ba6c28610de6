// Shapes shared by prompt validation (which produces a ResolvedPrompt) and the graph compiler
// (which turns one into a FrameGraph). Kept free of zod/onnxruntime so both sides can import it.

/** A link to another node's output: [source node id, output slot]. */
export interface LinkRef {
  node: string;
  slot: number;
}

/** One node after validation: class resolved, literals coerced to their declared type, defaults filled. */
export interface ResolvedNode {
  id: string;
  classType: string;
  /** Input name -> a coerced literal (number, string, boolean, unwrapped list) or a link. */
  inputs: Record<string, ResolvedValue>;
}

export type ResolvedValue = number | string | boolean | unknown[] | LinkRef;

export function isLink(v: ResolvedValue): v is LinkRef {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'node' in v && 'slot' in v;
}

/** A prompt that passed validation: only the output node(s) and what they depend on, in topological order. */
export interface ResolvedPrompt {
  /** Stable id: first 12 hex chars of md5 of the canonical prompt JSON. */
  id: string;
  /** Nodes in topological order (dependencies first). */
  nodes: ResolvedNode[];
  /** Id of the single LoadTensor node (the frame input). */
  inputNode: string;
  /** Id of the single SaveTensor node (the frame output). */
  outputNode: string;
}

/** A compiled, warm prompt: one RGB24 frame in, one RGB24 frame out (same size unless the graph scales). */
export interface FrameGraph {
  readonly promptId: string;
  readonly width: number;
  readonly height: number;
  /** Runs one RGB24 frame. `out`, when given, is a buffer the graph may write its output frame into
   *  (it then answers it as `data`); the caller must not read or reuse it until the result is used. */
  run(rgb: Uint8Array, out?: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number }>;
  dispose(): Promise<void>;
}
