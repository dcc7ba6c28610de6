// The port between the HTTP edge and the actor runtime: what a request can ask of the streams of
// this node (or, with NATS, of the cluster). The HTTP edge only translates requests into these calls
// and their answers back; the runtime turns them into actor events.

export type Architecture = 'dedicated' | 'shared' | 'prompt_worker';

/** API names for each architecture (see docs/api-and-prompts.md). */
export const ARCHITECTURES: Record<Architecture, { pipeline_type: string; architecture: string }> = {
  dedicated: { pipeline_type: 'ProcessPoolPipeline', architecture: 'dedicated_worker_per_stream' },
  shared: { pipeline_type: 'Pipeline', architecture: 'shared_single_process' },
  prompt_worker: { pipeline_type: 'PromptWorkerPipeline', architecture: 'prompt_per_worker' },
};

export function architectureOf(dedicatedWorker: boolean, usePromptWorker: boolean): Architecture {
  if (usePromptWorker) return 'prompt_worker';
  return dedicatedWorker ? 'dedicated' : 'shared';
}

/** A prompt that passed validation, as the stream keeps it: the canonical JSON and its id. */
export interface StreamPrompt {
  id: string;
  /** Canonical ComfyUI API-format prompt (after normalisation). Workers compile from this. */
  prompt: Record<string, unknown>;
}

export interface StartStreamRequest {
  id: string;
  subscribeUrl: string;
  publishUrl: string;
  controlUrl?: string;
  eventsUrl?: string;
  width: number;
  height: number;
  architecture: Architecture;
  prompts: StreamPrompt[];
}

export type WorkerStatus = {
  worker_id: string;
  pid: number | null;
  state: string;
  restart_count: number;
  prompt_id?: string;
  fail_reason?: string;
};

export type StreamStats = {
  fps_in: number;
  fps_out: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  frames_dropped: number;
};

export type StreamStatus = {
  request_id: string;
  running: boolean;
  state: string;
  subscribe_url: string;
  publish_url: string;
  control_url?: string;
  events_url?: string;
  width: number;
  height: number;
  frame_count: number;
  pipeline_type: string;
  architecture: string;
  degraded: boolean;
  end_reason?: string;
  fail_reason?: string;
  restart_count: number;
  active_prompt_id: string | null;
  prompt_ids: string[];
  stats: StreamStats;
  worker_status: WorkerStatus & { workers?: WorkerStatus[] };
};

export interface UpdatePromptsRequest {
  prompts: StreamPrompt[];
  parameters?: { width?: number; height?: number; warmup?: boolean };
}

export interface UpdatePromptsResult {
  prompts_count: number;
  parameters_updated: boolean;
  warmup_performed: boolean;
}

export interface WorkspaceInfo {
  workspace_path: string;
  config_keys: string[];
  total_workers: number;
  active_prompt_id: string | null;
}

export interface ActorSummary {
  id: string;
  machine: string;
  state: unknown;
  stream_id?: string;
  context: Record<string, unknown>;
}

export interface InspectionRecord {
  seq: number;
  time: number;
  type: string;
  actor_id: string;
  stream_id?: string;
  event?: unknown;
  snapshot?: { value: unknown; status: string };
}

/** The latest thumbnail of one side of a stream (a small JPEG made by its worker). */
export interface Thumbnail {
  streamId: string;
  side: 'input' | 'output';
  jpeg: Buffer;
  /** When the edge received it (ms since the epoch). */
  at: number;
  /** Increases with every thumbnail this edge receives (any stream, any side). */
  seq: number;
}

/** This node as the dashboard shows it (a cluster-wide `GET /nodes` lists the same figures per node). */
export interface NodeSummary {
  node_id: string;
  capacity: number;
  running: number;
  ready: boolean;
  reasons: string[];
  /** The node's last heartbeat written to the nodes bucket (ms since the epoch; null before the first). */
  heartbeat_at: number | null;
  started_at: number;
  bus: string;
}

/**
 * What the HTTP edge needs from the actor runtime. Methods throw SfError (src/errors.ts) with the
 * codes the API documents: STREAM_NOT_FOUND, STREAM_EXISTS, NO_CAPACITY, START_TIMEOUT, ...
 */
export interface StreamRuntime {
  readonly nodeId: string;
  readonly workspace: string;
  startStream(req: StartStreamRequest): Promise<StreamStatus>;
  getStream(id: string): Promise<StreamStatus | undefined>;
  listStreams(): Promise<StreamStatus[]>;
  stopStream(id: string): Promise<void>;
  stopAll(): Promise<number>;
  updatePrompts(id: string, req: UpdatePromptsRequest): Promise<UpdatePromptsResult>;
  restartWorker(id: string): Promise<void>;
  switchPrompt(id: string, promptId: string): Promise<string>;
  workspaceInfo(id: string): Promise<WorkspaceInfo>;
  /** Ready to take a stream: bus connected and capacity left. */
  readiness(): { ready: boolean; reasons: string[]; capacity: number; running: number };
  /** This node: id, capacity, load, last heartbeat. */
  nodeInfo(): NodeSummary;
  /** The latest thumbnail of a stream's input or output, if one arrived lately. */
  thumbnail(streamId: string, side: 'input' | 'output'): Thumbnail | undefined;
  onThumbnail(listener: (t: Thumbnail) => void): () => void;
  inspectActors(): ActorSummary[];
  recentInspection(filter?: { streamId?: string }): InspectionRecord[];
  onInspection(listener: (r: InspectionRecord) => void): () => void;
  /** Operational events (stats each second, restarts, warmups): what /metrics is made from. */
  onRuntimeEvent(listener: (e: RuntimeEvent) => void): () => void;
  close(): Promise<void>;
}

/** Operational events the runtime reports; metrics and logs are derived from them. */
export type RuntimeEvent =
  | { type: 'stats'; streamId: string; stats: StreamStats; frameCount: number; latenciesMs: number[]; dropsByReason: Record<string, number> }
  | { type: 'state'; streamId: string; actor: 'stream' | 'worker'; state: string }
  | { type: 'worker_restart'; streamId: string; workerId: string; reason: string }
  | { type: 'warmup'; streamId: string; durationMs: number }
  | { type: 'prompt_update'; streamId: string; durationMs: number; warmupPerformed: boolean };
