// What a stream IS, defined once: its spec (ids, URLs, frame size, architecture, prompts), the
// architecture names the API shows, and the status JSON every route answers with. Every layer passes
// these or a named projection of them:
//   StreamSpec            the HTTP edge -> the runtime -> the stream actor (machine input) -> KV record
//   StreamRecordSpec      the stream's record on the bus KV (the spec less its id, the record's key)
//   PipelineSpec          what a worker process needs to run the stream's media path
//   StreamStatus          the status JSON, made from the stream machine's snapshot (actors/status.ts)
import { z } from 'zod';

/** How a stream's graphs are hosted: its own process, the node's shared process, or a process per prompt. */
export const Architecture = z.enum(['dedicated', 'shared', 'prompt_worker']);
export type Architecture = z.infer<typeof Architecture>;

/** The API's names for each architecture (docs/api-and-prompts.md). */
export const ARCHITECTURE_NAMES: Record<Architecture, { pipeline_type: string; architecture: string }> = {
  dedicated: { pipeline_type: 'ProcessPoolPipeline', architecture: 'dedicated_worker_per_stream' },
  shared: { pipeline_type: 'Pipeline', architecture: 'shared_single_process' },
  prompt_worker: { pipeline_type: 'PromptWorkerPipeline', architecture: 'prompt_per_worker' },
};

/** The architecture a start request's two flags ask for. */
export function architectureOf(dedicatedWorker: boolean, usePromptWorker: boolean): Architecture {
  if (usePromptWorker) return 'prompt_worker';
  return dedicatedWorker ? 'dedicated' : 'shared';
}

/** One node of a ComfyUI API-format prompt. */
export const PromptNode = z.looseObject({ class_type: z.string(), inputs: z.record(z.string(), z.unknown()).default({}) });

/** A ComfyUI API-format prompt: node id -> node. */
export const ComfyPrompt = z.record(z.string(), PromptNode);
export type ComfyPrompt = z.infer<typeof ComfyPrompt>;

/** A link to another node's output: [source node id, output slot]. */
export const LinkRef = z.object({ node: z.string(), slot: z.number().int() });
export type LinkRef = z.infer<typeof LinkRef>;

/** A node input after validation: a coerced literal (number, string, boolean, unwrapped list) or a link. */
export const ResolvedValue = z.union([z.number(), z.string(), z.boolean(), z.array(z.unknown()), LinkRef]);
export type ResolvedValue = z.infer<typeof ResolvedValue>;

/** One node after validation: class resolved, literals coerced to their declared type, defaults filled. */
export const ResolvedNode = z.object({ id: z.string(), classType: z.string(), inputs: z.record(z.string(), ResolvedValue) });
export type ResolvedNode = z.infer<typeof ResolvedNode>;

/** A prompt as validation resolved it (src/inference/validate.ts): what a worker compiles, without validating again. */
export const ResolvedPrompt = z.object({
  /** Stable id: first 12 hex chars of md5 of the canonical prompt JSON. */
  id: z.string(),
  /** Only the output node and what it depends on, in topological order (dependencies first). */
  nodes: z.array(ResolvedNode),
  /** Id of the single LoadTensor node (the frame input). */
  inputNode: z.string(),
  /** Id of the single SaveTensor node (the frame output). */
  outputNode: z.string(),
});
export type ResolvedPrompt = z.infer<typeof ResolvedPrompt>;

/**
 * A prompt that passed validation, as a stream keeps it: its id (a hash of its canonical form), the
 * prompt as the client sent it (status, records), and the graph validation resolved (what a worker
 * compiles: a prompt is validated once, where the request arrives).
 */
export const StreamPrompt = z.object({ id: z.string().min(1), prompt: ComfyPrompt, graph: ResolvedPrompt });
export type StreamPrompt = z.infer<typeof StreamPrompt>;

export const StreamSpec = z.object({
  id: z.string().min(1),
  subscribeUrl: z.string().min(1),
  publishUrl: z.string().min(1),
  controlUrl: z.string().min(1).optional(),
  eventsUrl: z.string().min(1).optional(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  architecture: Architecture,
  prompts: z.array(StreamPrompt).min(1),
});
export type StreamSpec = z.infer<typeof StreamSpec>;

/** The spec as the stream's KV record keeps it (the id is the record's key). */
export const StreamRecordSpec = StreamSpec.omit({ id: true });
export type StreamRecordSpec = z.infer<typeof StreamRecordSpec>;

/** How far a stream's output got (its owner writes it now and then, and when it hands the stream over). */
export const StreamProgress = z.object({
  lastOutputPts: z.string(),
  lastInputPts: z.string().optional(),
  at: z.number(),
});
export type StreamProgress = z.infer<typeof StreamProgress>;

/** A stream's record on the bus KV (key: its id): the desired state, its owner node and epoch. */
export const StreamRecord = z.object({
  id: z.string(),
  owner: z.string(),
  epoch: z.number().int(),
  phase: z.enum(['active', 'ended']),
  request: StreamRecordSpec,
  progress: StreamProgress.optional(),
  updatedAt: z.number(),
});
export type StreamRecord = z.infer<typeof StreamRecord>;

/** Where a record stands for the copy of a stream run as `owner` at `epoch`. */
export function fenceVerdict(r: Pick<StreamRecord, 'owner' | 'epoch' | 'phase'>, owner: string, epoch: number): 'owned' | 'lost' | 'waiting' {
  if (r.epoch > epoch || (r.epoch === epoch && r.owner !== owner)) return 'lost';
  if (r.epoch === epoch) return 'owned';
  return 'waiting';
}

/** What a worker process needs of the spec to run the stream's media path, plus where to resume. */
export const PipelineSpec = StreamSpec.pick({ subscribeUrl: true, publishUrl: true, controlUrl: true, eventsUrl: true, width: true, height: true }).extend({
  streamId: z.string(),
  activePromptId: z.string(),
  /**
   * Output pts already published for this stream by an earlier process (after a crash): frames at or
   * before it are decoded but not output again, so the output's pts stay strictly increasing.
   */
  resumeAfterPts: z.string().optional(),
  /** The input (raw 33-bit) pts of that frame: the new process continues the old one's timeline from it. */
  resumeAfterInputPts: z.string().optional(),
  /**
   * In a cluster: output is written only while the stream's record (StreamRecord) names this owner at
   * this epoch. Before that (a copy started ahead of a hand-over) frames are read and dropped; once a
   * newer epoch or another owner holds it (a takeover) the output stops at once, untouched.
   */
  fence: z.object({ owner: z.string(), epoch: z.number().int() }).optional(),
});
export type PipelineSpec = z.infer<typeof PipelineSpec>;

// ---- status ------------------------------------------------------------------------------------

export const WorkerStatus = z.object({
  worker_id: z.string(),
  pid: z.number().nullable(),
  state: z.string(),
  restart_count: z.number(),
  prompt_id: z.string().optional(),
  fail_reason: z.string().optional(),
});
export type WorkerStatus = z.infer<typeof WorkerStatus>;

export const StreamStats = z.object({
  fps_in: z.number(),
  fps_out: z.number(),
  latency_p50_ms: z.number(),
  latency_p99_ms: z.number(),
  frames_dropped: z.number(),
});
export type StreamStats = z.infer<typeof StreamStats>;

export const StreamStatus = z.object({
  request_id: z.string(),
  /** The node running the stream (in a cluster, any node's edge answers for every stream). */
  node_id: z.string().optional(),
  running: z.boolean(),
  state: z.string(),
  subscribe_url: z.string(),
  publish_url: z.string(),
  control_url: z.string().optional(),
  events_url: z.string().optional(),
  width: z.number(),
  height: z.number(),
  frame_count: z.number(),
  pipeline_type: z.string(),
  architecture: z.string(),
  degraded: z.boolean(),
  end_reason: z.string().optional(),
  fail_reason: z.string().optional(),
  restart_count: z.number(),
  active_prompt_id: z.string().nullable(),
  prompt_ids: z.array(z.string()),
  stats: StreamStats,
  worker_status: WorkerStatus.extend({ workers: z.array(WorkerStatus).optional() }),
});
export type StreamStatus = z.infer<typeof StreamStatus>;
