// Typed failures of compiling or running a graph. Callers branch on `code`, never on the message.
import type { CodeOf } from '../../errors.ts';
/** The codes (src/errors.ts registry, layer inference; compile failures are PROMPT_REJECTED). */
export type GraphErrorCode = CodeOf<'inference'> | 'PROMPT_REJECTED' | 'GRAPH_DISPOSED';

export class GraphError extends Error {
  constructor(
    readonly code: GraphErrorCode,
    message: string,
    readonly nodeId?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'GraphError';
  }
}
