// The port between the HTTP edge and the actor runtime: what a request can ask of the streams of
// this node (or, with NATS, of the cluster). The HTTP edge only translates requests into these calls
// and their answers back; the runtime turns them into actor events. What a stream is (its spec and
// status) is defined once, in src/stream-spec.ts.
import type { StreamPrompt, StreamSpec, StreamStats, StreamStatus } from '../stream-spec.ts';
import type { UpdatePromptsParameters, UpdatePromptsResult, WorkspaceInfo } from './commands.ts';
import type { NodeView } from './cluster-view.ts';

export interface UpdatePromptsRequest {
  /** As the client sent them (each a ComfyUI prompt object or its JSON text); validated where the stream runs. */
  prompts: unknown[];
  parameters?: UpdatePromptsParameters;
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
  startStream(spec: StreamSpec): Promise<StreamStatus>;
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
  /** Every node of the cluster as this node's view has it (no round trip). */
  nodes(): NodeView[];
  /** Asks node `nodeId` (this one or another) to hand its streams to other nodes and leave; NODE_NOT_FOUND if none answers. */
  drainNode(nodeId: string): Promise<{ streams: number }>;
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
