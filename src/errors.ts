// One registry of the error codes streamfleet answers with at its edges (HTTP, CLI): each code has
// its HTTP status and the `error` text clients see. Inside, code throws SfError with one of these
// codes; the HTTP edge maps it to `{ error, message, ...details }` in exactly one place.

export const ERROR_CODES = {
  BAD_REQUEST: { status: 400, error: 'Bad Request', doc: 'The body, a parameter or a query is malformed or out of range.' },
  PROMPT_INVALID: {
    status: 400,
    error: 'Prompt validation failed',
    doc: 'A prompt cannot run; `validation_errors` says which node and input.',
  },
  PROMPT_MISSING: { status: 400, error: 'Bad Request', doc: 'update-prompts without `prompt` or `prompts`.' },
  NOT_DEDICATED_WORKER: { status: 400, error: 'Bad Request', doc: 'The route needs a dedicated-worker stream.' },
  NOT_PROMPT_WORKER: { status: 400, error: 'Bad Request', doc: 'The route needs a prompt-worker stream.' },
  PROMPT_REJECTED: { status: 400, error: 'Bad Request', doc: 'update-prompts: the worker could not compile or warm up the new prompts; the stream keeps its old ones.' },
  PROMPT_NOT_FOUND: { status: 400, error: 'Bad Request', doc: 'switch-prompt names a prompt id the stream does not hold.' },
  UNAUTHORIZED: { status: 401, error: 'Unauthorized', doc: 'The bearer token is missing or wrong.' },
  HOST_NOT_ALLOWED: { status: 403, error: 'Forbidden', doc: 'A stream URL points at a host outside --allowed-hosts.' },
  NOT_FOUND: { status: 404, error: 'Not Found', doc: 'No such route.' },
  STREAM_NOT_FOUND: { status: 404, error: 'Not Found', doc: 'No stream with that id on this service.' },
  NO_STREAMS: { status: 404, error: 'Not Found', doc: 'Stop-all found no running stream.' },
  THUMBNAIL_NOT_FOUND: {
    status: 404,
    error: 'Not Found',
    doc: 'No thumbnail of that stream and side arrived lately (thumbnails are off, or the stream has no frames yet).',
  },
  METHOD_NOT_ALLOWED: { status: 405, error: 'Method Not Allowed', doc: 'The route exists with other methods.' },
  STREAM_EXISTS: { status: 409, error: 'Conflict', doc: 'A stream with that id is already running.' },
  URI_TOO_LONG: { status: 414, error: 'URI Too Long', doc: 'A path segment (a stream id, say) exceeds the router limit; the URL is not echoed.' },
  PAYLOAD_TOO_LARGE: { status: 413, error: 'Payload Too Large', doc: 'The body exceeds the configured limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, error: 'Unsupported Media Type', doc: 'The body is not JSON.' },
  INTERNAL: { status: 500, error: 'Internal Server Error', doc: 'A bug: the message says where.' },
  BUS_UNAVAILABLE: {
    status: 503,
    error: 'Service Unavailable',
    doc: 'The bus (NATS) is disconnected and reconnecting: running streams go on; try again once /readyz is ready.',
  },
  TOO_MANY_VIEWERS: {
    status: 503,
    error: 'Service Unavailable',
    doc: 'The edge already serves as many live dashboard feeds or video relays as `dashboard.maxFeedClients` / `dashboard.maxVideoRelays` allow.',
  },
  NO_CAPACITY: { status: 503, error: 'Service Unavailable', doc: 'This node runs its maximum number of streams, or is not ready.' },
  START_TIMEOUT: { status: 504, error: 'Gateway Timeout', doc: 'The stream did not reach `running` in time; `state` says where it got.' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class SfError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra fields merged into the JSON error body (e.g. validation_errors, state). */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SfError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.details = details;
  }

  toJSON(): Record<string, unknown> {
    return { error: ERROR_CODES[this.code].error, message: this.message, code: this.code, ...this.details };
  }
}

export function isSfError(e: unknown): e is SfError {
  return e instanceof SfError;
}
