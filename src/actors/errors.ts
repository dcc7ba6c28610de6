// Typed errors of the actor runtime. Callers branch on `code`; the HTTP edge only ever sees SfError
// (src/errors.ts), which the runtime builds from these at its boundary.
import { CodedError, type CodeOf } from '../errors.ts';

/** The codes (src/errors.ts registry, layer runtime). */
export type RuntimeErrorCode = Exclude<CodeOf<'runtime'>, 'ABORTED'>;

export class RuntimeError extends CodedError<RuntimeErrorCode> {}

/** The worker's own error reply: its `code` is the worker's, kept for the caller. */
export class WorkerReplyError extends RuntimeError {
  constructor(
    readonly workerCode: string,
    message: string,
  ) {
    super('WORKER_REPLY_ERROR', `${workerCode}: ${message}`);
  }
}

export class WorkerGoneError extends RuntimeError {
  constructor(readonly procId: string, detail: string) {
    super('WORKER_GONE', `worker process ${procId} ${detail}`);
  }
}

/** Aborted by the caller's AbortSignal (the machine left the state that ran the effect). */
export class AbortedError extends Error {
  readonly code = 'ABORTED';
  constructor(what: string) {
    super(`${what} aborted`);
    this.name = 'AbortedError';
  }
}
