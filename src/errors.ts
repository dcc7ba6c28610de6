// The one registry of every error code streamfleet has: the codes its edges answer with (HTTP, CLI)
// and the codes its parts throw and send each other (worker replies, media, trickle, bus, runtime,
// machines). One case style (UPPER_SNAKE), one entry per code: the layer it belongs to, the HTTP
// status it answers with when it reaches the edge, the `error` text clients see, and what it means.
// docs/api-and-prompts.md lists every code (a test checks). Inside, code throws an error class of its
// layer with one of these codes; the HTTP edge maps SfError to `{ error, message, code, ...details }`
// in exactly one place.

type Layer = 'api' | 'worker' | 'inference' | 'runtime' | 'machine' | 'media' | 'trickle' | 'bus';
interface CodeDef {
  layer: Layer;
  status: number;
  error: string;
  doc: string;
}
/** A code the HTTP edge answers with. */
const api = (status: number, error: string, doc: string) => ({ layer: 'api', status, error, doc }) as const;
/** A code of the parts inside: it reaches a client only as a 500. */
const internal = <L extends Layer>(layer: L, doc: string) => ({ layer, status: 500, error: 'Internal Server Error', doc }) as const;

export const ERROR_CODES = {
  BAD_REQUEST: api(400, 'Bad Request', 'The body, a parameter or a query is malformed or out of range.'),
  PROMPT_INVALID: api(400, 'Prompt validation failed', 'A prompt cannot run; `validation_errors` says which node and input.'),
  PROMPT_MISSING: api(400, 'Bad Request', 'update-prompts without `prompt` or `prompts`.'),
  NOT_DEDICATED_WORKER: api(400, 'Bad Request', 'The route needs a dedicated-worker stream.'),
  NOT_PROMPT_WORKER: api(400, 'Bad Request', 'The route needs a prompt-worker stream.'),
  PROMPT_REJECTED: api(400, 'Bad Request', 'update-prompts: the worker could not compile or warm up the new prompts; the stream keeps its old ones.'),
  PROMPT_NOT_FOUND: api(400, 'Bad Request', 'switch-prompt names a prompt id the stream does not hold.'),
  UNAUTHORIZED: api(401, 'Unauthorized', 'The bearer token is missing or wrong.'),
  HOST_NOT_ALLOWED: api(403, 'Forbidden', 'A stream URL points at a host outside --allowed-hosts.'),
  NOT_FOUND: api(404, 'Not Found', 'No such route.'),
  STREAM_NOT_FOUND: api(404, 'Not Found', 'No stream with that id on this service.'),
  NO_STREAMS: api(404, 'Not Found', 'Stop-all found no running stream.'),
  THUMBNAIL_NOT_FOUND: api(404, 'Not Found', 'No thumbnail of that stream and side arrived lately (thumbnails are off, or the stream has no frames yet).'),
  METHOD_NOT_ALLOWED: api(405, 'Method Not Allowed', 'The route exists with other methods.'),
  STREAM_EXISTS: api(409, 'Conflict', 'A stream with that id is already running.'),
  URI_TOO_LONG: api(414, 'URI Too Long', 'A path segment (a stream id, say) exceeds the router limit; the URL is not echoed.'),
  PAYLOAD_TOO_LARGE: api(413, 'Payload Too Large', 'The body exceeds the configured limit.'),
  UNSUPPORTED_MEDIA_TYPE: api(415, 'Unsupported Media Type', 'The body is not JSON.'),
  INTERNAL: api(500, 'Internal Server Error', 'A bug: the message says where.'),
  BUS_UNAVAILABLE: api(503, 'Service Unavailable', 'The bus (NATS) is disconnected and reconnecting: running streams go on; try again once /readyz is ready.'),
  TOO_MANY_VIEWERS: api(503, 'Service Unavailable', 'The edge already serves as many live dashboard feeds or video relays as `dashboard.maxFeedClients` / `dashboard.maxVideoRelays` allow.'),
  NO_CAPACITY: api(503, 'Service Unavailable', 'No node of the cluster has room for another stream (each is full by its measured capacity, draining or not ready); the message says why for each.'),
  NODE_NOT_FOUND: api(404, 'Not Found', 'No live node with that id in the cluster.'),
  START_TIMEOUT: api(504, 'Gateway Timeout', 'The stream did not reach `running` in time; `state` says where it got.'),

  // ---- a worker process's replies to ProcCommands (besides PROMPT_INVALID, PROMPT_REJECTED,
  // PROMPT_NOT_FOUND and INTERNAL, which mean there what they mean at the edge)
  BAD_COMMAND: internal('worker', 'A command that is not a ProcCommand (bad JSON or shape).'),
  UNKNOWN_STREAM: internal('worker', 'A command names a stream the process has not opened.'),
  UNKNOWN_WORKER: internal('worker', 'A command names an inference worker the stream does not have.'),
  WORKER_EXISTS: internal('worker', 'add_worker for an inference worker id the stream already has.'),
  STREAM_CONFLICT: internal('worker', 'open_stream with another spec for a stream the process already runs.'),
  INFERENCE_THREAD_FAILED: internal('worker', 'The inference thread died or could not start.'),
  GRAPH_FAILED: internal('worker', 'A graph run failed on a frame.'),
  GRAPH_DISPOSED: internal('worker', 'A graph handle was used after it was released.'),
  SHUTTING_DOWN: internal('worker', 'The process (or the stream pipeline) is closing.'),
  // ---- compiling and running graphs
  GRAPH_UNKNOWN_NODE: internal('inference', 'A node type that cannot be compiled.'),
  GRAPH_BAD_INPUT: internal('inference', 'A node input that is missing, of the wrong type or out of range.'),
  GRAPH_BAD_LINK: internal('inference', 'A link that does not lead to an earlier IMAGE, or a prompt without one LoadTensor and one SaveTensor.'),
  GRAPH_MISSING_MODEL: internal('inference', 'A model that is not in the workspace or cannot be loaded.'),
  GRAPH_MODEL_SHAPE: internal('inference', 'A model that does not take or give float32 [1,3,H,W].'),
  GRAPH_PROVIDER_UNAVAILABLE: internal('inference', 'onnxruntime could not create a session on the configured provider.'),
  GRAPH_BAD_FRAME: internal('inference', 'A frame whose size does not match the compiled graph.'),
  GRAPH_RUN_FAILED: internal('inference', 'A stage of a graph failed on a frame.'),
  // ---- the node's actor runtime
  WORKER_REPLY_ERROR: internal('runtime', 'A worker process answered a command with an error reply (its code is kept).'),
  WORKER_GONE: internal('runtime', 'A worker process exited (or was never there) while a command waited on it.'),
  WORKER_JOIN_TIMEOUT: internal('runtime', 'A worker process did not join the bus in time.'),
  BAD_REPLY: internal('runtime', 'An answer on the bus did not match its schema.'),
  ABORTED: internal('runtime', 'An effect or a transfer was aborted by its caller (the machine left the state that ran it).'),
  // ---- machines
  ACTOR_NOT_PROVIDED: internal('machine', 'A machine ran an effect its host did not provide.'),
  // ---- media
  MEDIA_DECODE_FAILED: internal('media', "An input segment's bytes could not be demuxed or decoded (not TS, no video, corrupt)."),
  MEDIA_SEGMENT_TRUNCATED: internal('media', 'An input segment ended in the middle of a packet; the frames before the cut were delivered.'),
  MEDIA_ENCODE_FAILED: internal('media', 'The encoder or muxer refused a frame or packet.'),
  MEDIA_SEGMENT_FAILED: internal('media', 'A file to be segmented could not be opened or holds no video.'),
  MEDIA_SELFTEST_FAILED: internal('media', 'The start-up self-test did not decode its clip (usually the Promise.withResolvers polyfill is missing).'),
  // ---- trickle clients
  CHANNEL_NOT_FOUND: internal('trickle', 'A trickle channel does not exist (404), or is gone.'),
  SEQUENCE_NONEXISTENT: internal('trickle', 'A trickle seq is too old or too far ahead (470); the answer names the live edge.'),
  END_OF_STREAM: internal('trickle', 'A trickle channel has ended (Lp-Trickle-Closed).'),
  HTTP_STATUS: internal('trickle', 'A trickle server answered a status the client does not expect (5xx transient, 4xx final).'),
  HEADER_TIMEOUT: internal('trickle', 'No response headers within trickle.headerTimeoutMs.'),
  RETRIES_EXHAUSTED: internal('trickle', 'More transient trickle failures in a row than trickle.maxRetries allows.'),
  SEGMENT_TRUNCATED: internal('trickle', 'A trickle segment body broke off before its end.'),
  SEGMENT_TOO_LARGE: internal('trickle', 'A trickle segment exceeds its size limit.'),
  CLOSED: internal('trickle', 'The trickle client was closed.'),
  // ---- the bus
  BUS_TIMEOUT: internal('bus', 'No reply on a subject within the request timeout.'),
  BUS_NO_RESPONDERS: internal('bus', 'Nobody subscribes the subject a request went to.'),
  BUS_CLOSED: internal('bus', 'The bus was closed.'),
  BUS_INVALID_SUBJECT: internal('bus', 'A subject (or a stream id in one) is not a valid subject token.'),
  BUS_DECODE: internal('bus', 'A message body is not the JSON it should be.'),
  BUS_BRIDGE_UNAVAILABLE: internal('bus', "A worker process's IPC bridge to its node is gone."),
  BUS_CONNECT: internal('bus', 'Cannot connect to NATS.'),
  BUS_DISCONNECTED: internal('bus', 'NATS is disconnected (reconnecting).'),
  KV_REVISION_MISMATCH: internal('bus', 'A KV compare-and-set lost: the record changed since it was read.'),
  KV_INVALID_KEY: internal('bus', 'A KV key is not valid.'),
  KV_INVALID_BUCKET: internal('bus', 'A KV bucket name is not valid.'),
  BUS_INTERNAL: internal('bus', 'The bus failed in a way it does not name (the cause says).'),
} as const satisfies Record<string, CodeDef>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes of one layer. */
export type CodeOf<L extends Layer> = { [K in ErrorCode]: (typeof ERROR_CODES)[K]['layer'] extends L ? K : never }[ErrorCode];

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

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

/**
 * The base of every layer's error class: a code of this registry (of that layer), a message and the
 * `cause` kept. The class name is the subclass's own (`MediaError`, `BusTimeoutError`, ...).
 */
export class CodedError<C extends ErrorCode> extends Error {
  constructor(
    readonly code: C,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export function isSfError(e: unknown): e is SfError {
  return e instanceof SfError;
}

/** The codes a worker process replies with. */
export type WorkerErrorCode = CodeOf<'worker'> | 'PROMPT_INVALID' | 'PROMPT_REJECTED' | 'PROMPT_NOT_FOUND' | 'INTERNAL';

/** A typed failure of a worker process (its runner and its inference workers); its code travels in a Reply. */
export class WorkerError extends CodedError<WorkerErrorCode> {}
