// Typed failures of the worker process. Each carries a stable `code` that travels in a Reply
// ({ok: false, code, message}); the runtime branches on the code, never on the message text.

export type WorkerErrorCode =
  /** A command that is not a ProcCommand (bad JSON or shape). */
  | 'bad_command'
  /** A command names a stream this process has not opened. */
  | 'unknown_stream'
  /** A command names a worker the stream does not have. */
  | 'unknown_worker'
  /** add_worker for a worker id the stream already has. */
  | 'worker_exists'
  /** switch_prompt to a prompt no worker of the stream holds. */
  | 'unknown_prompt'
  /** open_stream with a different configuration for a stream that is already open. */
  | 'stream_conflict'
  /** A prompt failed validation (the message carries ComfyUI's error). */
  | 'invalid_prompt'
  /** A prompt validated but could not be compiled or warmed up. */
  | 'compile_failed'
  /** The inference thread died or could not start. */
  | 'inference_thread_failed'
  /** A graph run failed on a frame. */
  | 'graph_failed'
  /** The process is shutting down. */
  | 'shutting_down'
  /** Anything else (a bug): the message says what. */
  | 'internal';

export class WorkerError extends Error {
  override readonly name = 'WorkerError';
  constructor(
    readonly code: WorkerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The `code` of an error if it has a string one (GraphError, MediaError, TrickleError, BusError ...). */
export function errorCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/** Walks `cause` links (bounded) and returns the first error matching `pred`. */
export function findCause<T>(err: unknown, pred: (e: unknown) => e is T, depth = 8): T | undefined {
  let e: unknown = err;
  for (let i = 0; i < depth && e; i++) {
    if (pred(e)) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
