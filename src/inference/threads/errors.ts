// Typed failures of compiling and running graphs in inference threads. The `code` travels in the
// worker process's replies unchanged (the runner reads it with errorCode()), so these codes are a
// subset of the worker process's codes.

export type InferenceErrorCode =
  /** switch_prompt / run for a prompt this inference worker does not hold. */
  | 'unknown_prompt'
  /** A prompt validated but could not be compiled or warmed up. */
  | 'compile_failed'
  /** The inference thread died or could not start. */
  | 'inference_thread_failed'
  /** A graph run failed on a frame. */
  | 'graph_failed'
  /** The inference worker was removed while it worked. */
  | 'shutting_down'
  /** Anything else (a bug): the message says what. */
  | 'internal';

export class InferenceError extends Error {
  override readonly name = 'InferenceError';
  constructor(
    readonly code: InferenceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
