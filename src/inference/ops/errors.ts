// Typed failures of compiling or running a graph. Callers branch on `code`, never on the message.
export type GraphErrorCode =
  | 'unknown_node'
  | 'bad_input'
  | 'bad_link'
  | 'missing_model'
  | 'model_shape'
  | 'provider_unavailable'
  | 'bad_frame'
  | 'compile_failed'
  | 'run_failed'
  | 'disposed';

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
