// Every limit, default and tunable of streamfleet lives here, parsed once with zod and frozen.
// An empty object is a valid configuration: each field documents its default. Each area owns one
// section; add new bounds to the section of the module that enforces them.
import { z } from 'zod';

const KiB = 1024;
const MiB = 1024 * KiB;


/** How the runner's timeline (runner/timeline.ts) judges input pts: what is a discontinuity. */
export const TimelineConfigSchema = z.object({
  /** A pts at most this far behind its stream's previous one (after unwrapping) is passed through
   *  as it is, flagged `advances: false` when not after the stream's last output; further back is
   *  a `backward` discontinuity (a publisher that restarted its clock). */
  maxBackwardStepMs: z.number().min(0).default(200),
  /** A pts more than this far ahead of its stream's previous one (after unwrapping) is a `forward`
   *  discontinuity and is rebased; up to it, a gap in the input stays a gap in the output. */
  maxForwardJumpMs: z.number().positive().default(10_000),
  /** Most distance (input pts) between a packet and the latest pts of the section another stream
   *  started, for the packet to join that section with its offset (A/V interleave in arrival order
   *  plus decoder delay); a packet further away is a discontinuity of its own stream. */
  maxInterleaveMs: z.number().min(0).default(2_000),
  /** Packet duration assumed for a stream with no recent deltas yet (placing the first packet
   *  after a discontinuity, or a realigned one). */
  defaultFrameDurationMs: z.number().positive().default(1000 / 30),
  /** Recent positive pts deltas kept per stream; their median is the stream's packet duration. */
  frameDurationWindow: z.number().int().min(1).max(64).default(8),
});
export type TimelineConfig = z.infer<typeof TimelineConfigSchema>;

export const TrickleConfigSchema = z.object({
  /** Segments kept per channel (go-livepeer keeps 5: a ring at seq % 5). */
  ringSize: z.number().int().min(2).max(64).default(5),
  /** A channel with no new segment for this long is closed (names starting with `_` are exempt). */
  idleTimeoutMs: z.number().int().positive().default(5 * 60_000),
  /** How often idle channels are swept. */
  sweepIntervalMs: z.number().int().positive().default(60_000),
  /** 100 Continue keep-alive interval while a pre-opened POST has no data yet. */
  keepAliveMs: z.number().int().positive().default(10_000),
  /** Create a channel on its first POST; false answers 404 `Stream not found` instead. */
  autoCreate: z.boolean().default(true),
  /** Largest accepted segment body; a longer POST is cut off with 413. */
  maxSegmentBytes: z.number().int().positive().default(64 * MiB),
  /** Most channels one server holds at once (new ones answer 503). */
  maxChannels: z.number().int().positive().default(10_000),
  /** Clients: re-issue a request whose response headers have not arrived after this long. */
  headerTimeoutMs: z.number().int().positive().default(20_000),
  /** Clients: transient errors tolerated in a row before giving up. */
  maxRetries: z.number().int().min(0).default(5),
  /** Subscribers waiting for a channel that does not exist yet (404) ask again this often: the first
   *  frames of a stream wait at most this long for the subscriber to notice its input appeared. */
  channelPollMs: z.number().int().positive().default(50),
  /** Clients: first retry delay; doubles each try up to retryMaxMs. */
  retryBaseMs: z.number().int().positive().default(500),
  retryMaxMs: z.number().int().positive().default(5_000),
  /** Longest channel name (after URL decoding) the server accepts; longer names answer 400. */
  maxChannelNameLength: z.number().int().positive().default(256),
  /** Server close(): how long open requests may finish before their sockets are cut. */
  shutdownGraceMs: z.number().int().min(0).default(1_000),
  /** Server: a connection must deliver a request's complete headers within this long (counted from
   *  connect, or from the request's first byte on a kept-alive connection); a silent connection is
   *  closed, a slow one (slowloris) answered 408. Bodies are never timed: a POST may stream for
   *  minutes, a GET may stay parked for the next segment. */
  requestHeadersTimeoutMs: z.number().int().positive().default(10_000),
  /** Server: a kept-alive connection with no request in flight is closed after this long (node adds
   *  a second of grace, so clients that reuse a connection just in time do not race its close). */
  connectionIdleMs: z.number().int().positive().default(30_000),
  /** Server: how often headers deadlines are checked (how late past requestHeadersTimeoutMs a slow
   *  client may be cut). */
  connectionCheckIntervalMs: z.number().int().positive().default(1_000),
  /** Server: most connections open at once from one client address; a request on one more is
   *  answered 429 (JSON) and its connection closed. A node's own workers and a gateway each hold about
   *  ten per stream (a GET and a POST per channel, plus their preconnects). */
  maxConnectionsPerClient: z.number().int().positive().default(1_024),
  /** Server: every trickle request needs `Authorization: Bearer <http.authToken>` (401 with a JSON
   *  body otherwise). Off by default: go-livepeer gateways and orchestrators send no token. Needs a
   *  token (`--auth-token` / `SF_AUTH_TOKEN`). streamfleet's own trickle clients send no token yet,
   *  so streams whose URLs point at this port fail while it is on. */
  requireAuth: z.boolean().default(false),
});

export const MediaConfigSchema = z.object({
  /** Target frame size the graph sees (ai-runner: resize then center-crop). */
  width: z.number().int().min(2).max(2048).default(512),
  height: z.number().int().min(2).max(2048).default(512),
  /** Input frame-rate cap in frames/s; 0 means no cap. */
  maxInputFps: z.number().min(0).default(0),
  /** x264 keyframe interval in seconds. Output segments follow input segments (one GOP each),
   *  and every output segment starts with an IDR from its fresh encoder. */
  gopSeconds: z.number().positive().default(2),
  x264Preset: z.string().default('ultrafast'),
  x264Tune: z.string().default('zerolatency'),
  /** x264 constant rate factor. */
  crf: z.number().int().min(0).max(51).default(23),
  /** Frames FFmpeg decodes while probing a file being cut into segments (segmenter.ts) to estimate
   *  its frame rate; 0 skips that (timestamps come from the stream). */
  probeFpsFrames: z.number().int().min(0).default(0),
  /** Live decoder slice threads per stream (1: a worker's stream decodes on its own thread; frame
   *  threads are never used, each would hold a frame back). */
  decoderThreads: z.number().int().min(1).max(64).default(1),
  /** x264 threads per output encoder (0 = x264's choice: a pool per encoder, which on a small
   *  node costs more CPU per frame than it saves in time). */
  encoderThreads: z.number().int().min(0).max(64).default(1),
  /** Probe size when cutting a local file into segments: files muxed with a delay (ffmpeg's
   *  default 0.7 s) put the first audio packet megabytes in at high bitrates. */
  fileProbeBytes: z.number().int().min(32 * KiB).default(16 * MiB),
  /** FFmpeg's own log level (its messages go straight to stderr, outside pino). */
  ffmpegLogLevel: z.enum(['quiet', 'fatal', 'error', 'warning', 'info']).default('quiet'),
  /** Most bytes one segment may hold when cutting a file into segments (a longer GOP fails the file). */
  maxSegmentBytes: z.number().int().positive().default(64 * MiB),
});

export const InferenceConfigSchema = z.object({
  /** Directory holding `models/`; created with the built-in models on first use. The one place a node and its processes read it (serve resolves it first). */
  workspace: z.string().default('./workspace'),
  /** onnxruntime execution provider: cpu by default, cuda when asked and present. */
  provider: z.enum(['cpu', 'cuda']).default('cpu'),
  /** Synthetic frames run right after compiling a graph, before the first real frame. */
  warmupFrames: z.number().int().min(0).default(3),
  /** Most nodes one prompt may hold. */
  maxPromptNodes: z.number().int().positive().default(1_000),
  /** Most prompts one stream may hold. */
  maxPrompts: z.number().int().positive().default(16),
  /** Compiled sessions kept per process, keyed by canonical graph. */
  sessionCacheSize: z.number().int().positive().default(8),
  /** Run each inference worker's graphs in a worker_thread of its own (true), or in the worker
   *  process's main thread (false: no second isolate, no hand-over of each frame, about half the
   *  memory per worker; a graph run holds the process's event loop for its duration, which the
   *  media path waits for anyway). */
  graphThreads: z.boolean().default(false),
  /** onnxruntime intra-op threads per session. */
  intraOpThreads: z.number().int().min(1).default(1),
  /** Largest width/height ImageScale may produce (ComfyUI's own widget max is 16384). */
  maxScaleSide: z.number().int().positive().default(16_384),
  /** Largest output side any compiled graph may produce (ImageScaleBy can multiply up to 8x per node). */
  maxGraphSide: z.number().int().positive().default(8_192),
  /** TextRedact: PaddleOCR's det_limit_side_len ('max'): the detector input's longer side is scaled down to this. */
  textDetLimitSide: z.number().int().min(32).default(960),
  /** TextRedact: sigma of the gaussian (ComfyUI's formula over linspace(-1,1)) used to blur detected text. */
  textRedactSigma: z.number().positive().default(1.0),
  /** Registers the test-only node classes (TestHoldFrame: passes the image through after holding each
   *  frame `hold_ms`, so a graph is slower than its input by construction). Off in production: with it
   *  off, validation and `/object_info` do not know these classes. */
  testNodes: z.boolean().default(false),
});

export const BusConfigSchema = z.object({
  /** NATS server URL; absent means the embedded in-process bus. */
  natsUrl: z.string().optional(),
  /** Default request/reply timeout. */
  requestTimeoutMs: z.number().int().positive().default(5_000),
  /** KV bucket names. */
  streamsBucket: z.string().default('sf_streams'),
  nodesBucket: z.string().default('sf_nodes'),
  /** Messages one subscription (or KV watch) may hold unread; newer ones are dropped and reported
   *  as a `slowConsumer` status, so a stalled reader cannot grow memory with the stream's age. */
  maxPendingMessages: z.number().int().positive().default(65_536),
  /** Values kept per key in a NATS KV bucket created on demand (the embedded bus keeps the latest). */
  kvHistory: z.number().int().min(1).max(64).default(1),
  /** NATS: how long the first connect may take. */
  connectTimeoutMs: z.number().int().positive().default(5_000),
  /** NATS: reconnect attempts after losing the server; -1 means forever (a cluster member comes back). */
  maxReconnectAttempts: z.number().int().min(-1).default(-1),
  /** NATS: wait between reconnect attempts to the same server. */
  reconnectTimeWaitMs: z.number().int().min(0).default(1_000),
  /** NATS: the client pings the server this often; with `maxPingsOut` unanswered in a row the
   *  connection counts as lost (a server gone silently, without closing the socket). */
  pingIntervalMs: z.number().int().positive().default(5_000),
  maxPingsOut: z.number().int().min(1).default(2),
  /** NATS: bytes of publishes the bus holds while the connection is lost and sends, in order, on the
   *  reconnect (a worker's stream events: input ended, output failed...); beyond it publishes are
   *  dropped and counted, so a long outage cannot grow memory. */
  reconnectBufferBytes: z.number().int().min(0).default(8 * MiB),
  /** IPC bridge: how much longer than a request's timeout a child waits for the parent's answer
   *  before timing out on its own (only matters if the parent stopped answering). */
  bridgeTimeoutSlackMs: z.number().int().min(0).default(1_000),
});

export const ActorConfigSchema = z.object({
  /** Frames in flight per stream between decode and encode; the oldest waiting input is dropped beyond it. */
  maxFramesInFlight: z.number().int().min(1).max(8).default(2),
  /** How long a worker process may take to join the bus and warm up. */
  workerStartTimeoutMs: z.number().int().positive().default(30_000),
  heartbeatIntervalMs: z.number().int().positive().default(1_000),
  /** Heartbeats missed in a row before a worker counts as hung and is restarted. */
  heartbeatMisses: z.number().int().positive().default(3),
  restartBackoffBaseMs: z.number().int().min(0).default(100),
  restartBackoffMaxMs: z.number().int().positive().default(5_000),
  /** Restarts allowed within restartWindowMs before the worker is `failed`. */
  maxRestarts: z.number().int().min(0).default(5),
  restartWindowMs: z.number().int().positive().default(60_000),
  /** Wait for an input channel that does not exist yet; then the stream ends with `input_timeout`. */
  inputWaitMs: z.number().int().positive().default(60_000),
  /** No input for this long marks the stream degraded (recovers when input returns). */
  degradedInputMs: z.number().int().positive().default(5_000),
  /** Status events on `{id}-events` at least this often. */
  eventsIntervalMs: z.number().int().positive().default(5_000),
  /** Worker: events waiting to be posted on `{id}-events` while one is in flight (older status events go first). */
  maxQueuedStreamEvents: z.number().int().min(1).default(16),
  /** Worker: largest `{id}-control` message read; a longer one is skipped. */
  maxControlMessageBytes: z.number().int().positive().default(1024 * 1024),
  /** Most streams this node runs at once. */
  maxStreams: z.number().int().positive().default(16),
  /** How long POST /stream/start waits for `running` before answering 504. */
  startTimeoutMs: z.number().int().positive().default(30_000),
  /** How long a stop waits for the stream's workers to be gone before answering anyway. */
  stopTimeoutMs: z.number().int().positive().default(15_000),
  /** A worker process asked to shut down (then sent SIGTERM) gets this long before the next, harder step. */
  workerStopGraceMs: z.number().int().positive().default(3_000),
  /** While a freshly forked worker process joins the bus, it is pinged this often. */
  workerPingIntervalMs: z.number().int().positive().default(50),
  /** Ended streams (terminated/failed) stay visible in status this long, so clients can read why. */
  endedStreamRetentionMs: z.number().int().min(0).default(60_000),
  /** After the worker reports its input ended, the stream ends once a heartbeat shows no more output
   *  (the frames still paced or in flight got out), or after this long at most. */
  inputEndDrainMs: z.number().int().min(0).default(3_000),
  /** Worker processes kept forked, joined and idle, so a start or a crash restart skips the fork
   *  (about 0.6 s of a core to load the bundled worker). Off by default: each costs its memory, and forking the
   *  replacement takes a core for that long, which on a small node makes its other streams drop
   *  frames. Worth 1-2 on nodes with cores to spare. */
  spareWorkers: z.number().int().min(0).max(16).default(0),
  /** A worker process's V8 young generation: each of its two semi-spaces at most this many MiB
   *  (--max-semi-space-size). V8 grows them to 16 MiB under a worker's allocation; then every young
   *  collection counted the new space against the old generation's headroom and started a full
   *  marking pass (measured: two a second), and the spaces held 32 MiB. 1 MiB: cheap, frequent
   *  young collections and no such passes. */
  workerSemiSpaceMiB: z.number().int().min(1).max(64).default(1),
  /** glibc malloc arenas in a worker process (MALLOC_ARENA_MAX). Each thread that allocates would
   *  otherwise get its own (up to 8 per core), each holding freed memory of its own; a worker's
   *  threads allocate little, so one arena costs nothing measurable. 0: glibc's default. */
  workerMallocArenas: z.number().int().min(0).max(64).default(1),
});

export const RunnerConfigSchema = z.object({
  /** A copy of a stream started ahead of a hand-over keeps the input of its last this-many segments
   *  while its output is held, and processes them when it takes over (so it can continue from the
   *  frame after the old owner's last). */
  heldSegments: z.number().int().min(1).max(8).default(2),
  /** Largest access unit (one PES: a coded picture) reassembled from the input; larger ones are dropped and counted. */
  maxUnitBytes: z.number().int().positive().default(16 * MiB),
  /** The processing loop may stay busy this long with more than actors.maxFramesInFlight frames waiting
   *  before its rate is judged: if it processed less input time than the wall time that passed, it is
   *  slower than the input and frames skip the graph until it catches up (runner/lag-watch.ts). A burst
   *  the loop clears faster than real time is never cut. Bounds the latency a slow graph can build up. */
  maxBusyMs: z.number().int().positive().default(1_000),
  /** Compressed input waiting for the processing loop, at most; beyond it the oldest waiting units
   *  are dropped up to the next random access point (a stalled loop, never a burst). */
  maxQueuedBytes: z.number().int().positive().default(32 * MiB),
  timeline: TimelineConfigSchema.default(TimelineConfigSchema.parse({})),
});

export const HttpConfigSchema = z.object({
  port: z.number().int().min(0).max(65535).default(8000),
  host: z.string().default('127.0.0.1'),
  /** Embedded trickle server port; 0 turns it off. */
  tricklePort: z.number().int().min(0).max(65535).default(3389),
  /** Bearer token; absent means no auth. */
  authToken: z.string().optional(),
  /** Hosts (host or host:port) that subscribe/publish/control/events URLs may point to. */
  allowedHosts: z.array(z.string()).default(['127.0.0.1', 'localhost', '[::1]', '::1']),
  bodyLimitBytes: z.number().int().positive().default(1 * MiB),
  /** Largest width/height a stream may ask for (both must be even). */
  maxFrameSize: z.number().int().min(2).default(2048),
  maxIdLength: z.number().int().positive().default(128),
  /** Inspection events kept in the ring buffer. */
  inspectBufferSize: z.number().int().positive().default(1_000),
  /** @statelyai/inspect WebSocket inspector URL. */
  inspectUrl: z.string().optional(),
});

export const ThumbnailConfigSchema = z.object({
  /** Worker processes make small JPEG thumbnails of each stream's input and output frames (frames
   *  they already hold) and publish them on `sf.stream.<id>.thumb.<side>`; the edge serves the latest
   *  per stream and side. false: no thumbnail is made, nothing is published. */
  enabled: z.boolean().default(true),
  /** Thumbnails per second per side (input, output) at most; a frame is taken when this much time
   *  passed since the last one, so a slower stream makes fewer. */
  fps: z.number().positive().max(30).default(2),
  /** Thumbnail width in pixels (even); the height follows the frame's aspect ratio (even, >= 2). */
  width: z.number().int().min(16).max(640).refine((v) => v % 2 === 0, 'must be a multiple of 2').default(160),
  /** JPEG quality 1 (smallest) .. 100 (best), mapped linearly onto FFmpeg mjpeg's fixed qscale 31 .. 2. */
  quality: z.number().int().min(1).max(100).default(70),
  /** Scaler of the frame -> thumbnail step (swscale): fast_bilinear (cheapest, ~0.2 ms from 512x512
   *  on this machine), bilinear (~0.75 ms), area (~1.1 ms, least aliasing). */
  scaler: z.enum(['fast_bilinear', 'bilinear', 'area']).default('fast_bilinear'),
  /** Largest thumbnail published (bytes); a larger one is dropped and counted (a bus message stays small). */
  maxBytes: z.number().int().min(1024).max(1024 * KiB).default(64 * KiB),
  /** Thumbnail failures in a row after which a stream's worker stops making them (logged once). */
  maxFailures: z.number().int().min(1).default(5),
  /** Edge: streams whose latest thumbnails are kept (least recently updated dropped beyond it). */
  maxStreamsKept: z.number().int().positive().default(256),
  /** Edge: a thumbnail older than this is dropped (its stream stopped sending). */
  keepMs: z.number().int().positive().default(120_000),
});

export const DashboardConfigSchema = z.object({
  /** The web dashboard at `/` (static page, `/dashboard/*` routes, the output video relay). */
  enabled: z.boolean().default(true),
  /** Live feed (`GET /dashboard/feed`, SSE): the stream list and node figures are sent this often. */
  feedIntervalMs: z.number().int().min(100).max(60_000).default(1_000),
  /** Stats samples kept per stream for the sparklines (one per worker heartbeat: 300 is 5 minutes at
   *  the default 1 s heartbeat). */
  historySamples: z.number().int().min(10).max(10_000).default(300),
  /** Streams the feed keeps figures for (sparklines, drop totals); the least recently updated go first. */
  maxStreamsTracked: z.number().int().positive().default(256),
  /** Live feed clients at once (SSE connections); more answer 503. */
  maxFeedClients: z.number().int().positive().default(32),
  /** A feed client whose unsent data exceeds this (a stalled browser tab) is disconnected. */
  maxFeedBufferBytes: z.number().int().positive().default(4 * MiB),
  /** Live output relays (`GET /stream/{id}/output.ts`) at once on this edge; more answer 503. */
  maxVideoRelays: z.number().int().positive().default(8),
  /** A relay viewer whose unsent bytes exceed this skips whole segments until it catches up. */
  maxRelayBufferBytes: z.number().int().positive().default(8 * MiB),
  /** Dashboard session cookie lifetime (the read-only cookie that lets EventSource, <img> and the
   *  video player, which cannot send an Authorization header, through a bearer-token edge). */
  sessionTtlMs: z.number().int().positive().default(12 * 60 * 60_000),
  thumbnails: ThumbnailConfigSchema.default(ThumbnailConfigSchema.parse({})),
});

export const ClusterConfigSchema = z.object({
  /** A node whose heartbeat is older than this is dead: the others take its streams over. */
  leaseMs: z.number().int().positive().default(3_000),
  /** How often a node looks for dead nodes' streams (and checks it still owns its own). */
  checkIntervalMs: z.number().int().positive().default(250),
  /** A node whose heartbeat is older than the lease is asked (its inbox) before its streams are taken;
   *  one that does not answer within this is dead (a killed node has no responder and answers at once). */
  pingTimeoutMs: z.number().int().positive().default(1_000),
  /** A dead node's stream is claimed first by the node placement picks for it; the others try after this. */
  failoverBackupMs: z.number().int().min(0).default(1_000),
  /** Share of the node's cores its streams may use: capacity = cores x this / CPU per stream (above 1
   *  oversubscribes the cores: benchmarks that look for the count where real time breaks). */
  cpuTarget: z.number().positive().max(16).default(0.8),
  /** Cores one stream is assumed to use until the node has measured its own (30 fps 512x512 here: about 0.2). */
  streamCpuEstimate: z.number().positive().default(0.25),
  /** Share of the machine's free memory its streams may use, and the memory assumed per stream until measured. */
  memoryTarget: z.number().positive().max(1).default(0.8),
  streamMemoryEstimateBytes: z.number().int().positive().default(256 * MiB),
  /** The KV watches count as silent (and are reopened) when the nodes watch has not delivered this
   *  node's own heartbeat for this long (a watch can stall across a NATS server restart). */
  watchSilentMs: z.number().int().positive().default(2_500),
  /** How often the owner writes where each stream's output got to into its record (for a takeover). */
  progressIntervalMs: z.number().int().positive().default(2_000),
  /** Drain: how long the node waits for another to run a stream before it gives up on handing it over. */
  handoverTimeoutMs: z.number().int().positive().default(30_000),
});

export const ConfigSchema = z.object({
  nodeId: z.string().default('node-1'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  trickle: TrickleConfigSchema.default(TrickleConfigSchema.parse({})),
  media: MediaConfigSchema.default(MediaConfigSchema.parse({})),
  inference: InferenceConfigSchema.default(InferenceConfigSchema.parse({})),
  bus: BusConfigSchema.default(BusConfigSchema.parse({})),
  actors: ActorConfigSchema.default(ActorConfigSchema.parse({})),
  runner: RunnerConfigSchema.default(RunnerConfigSchema.parse({})),
  http: HttpConfigSchema.default(HttpConfigSchema.parse({})),
  dashboard: DashboardConfigSchema.default(DashboardConfigSchema.parse({})),
  cluster: ClusterConfigSchema.default(ClusterConfigSchema.parse({})),
});

export type Config = z.infer<typeof ConfigSchema>;

/** The sections a worker process reads (src/runner): it gets these, not the node's HTTP settings (its token) or cluster policy. */
export const WorkerConfigSchema = ConfigSchema.omit({ http: true, cluster: true });
export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;

/** What a node hands each worker process of its configuration. */
export function workerConfig(config: Readonly<Config>): WorkerConfig {
  const { http: _http, cluster: _cluster, ...rest } = config;
  return rest;
}
export type TrickleConfig = z.infer<typeof TrickleConfigSchema>;
export type MediaConfig = z.infer<typeof MediaConfigSchema>;
export type InferenceConfig = z.infer<typeof InferenceConfigSchema>;
export type BusConfig = z.infer<typeof BusConfigSchema>;
export type ActorConfig = z.infer<typeof ActorConfigSchema>;
export type HttpConfig = z.infer<typeof HttpConfigSchema>;
export type RunnerConfig = z.infer<typeof RunnerConfigSchema>;
export type DashboardConfig = z.infer<typeof DashboardConfigSchema>;
export type ThumbnailConfig = z.infer<typeof ThumbnailConfigSchema>;
export type ClusterConfig = z.infer<typeof ClusterConfigSchema>;

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };
export type ConfigInput = DeepPartial<Config>;

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Parses and freezes a configuration; throws a zod error naming the bad field. */
export function loadConfig(input: ConfigInput = {}): Readonly<Config> {
  return deepFreeze(ConfigSchema.parse(input));
}

export const defaultConfig = loadConfig();
