// Shapes shared by prompt validation (which produces a ResolvedPrompt) and the graph compiler
// (which turns one into a FrameGraph). The resolved prompt's shape is defined with the stream spec
// (src/stream-spec.ts), since it travels to worker processes inside each StreamPrompt.

export type { LinkRef, ResolvedNode, ResolvedPrompt, ResolvedValue } from '../stream-spec.ts';
import type { LinkRef, ResolvedValue } from '../stream-spec.ts';

export function isLink(v: ResolvedValue): v is LinkRef {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'node' in v && 'slot' in v;
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
