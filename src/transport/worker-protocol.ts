// The control protocol between a node's actor runtime and its worker processes, over the bus.
// Raw frames never travel here: only commands, replies, heartbeats with stats, and stream events.
//
//   proc inbox   sf.proc.<procId>.cmd             ping | attach | detach | shutdown   (request/reply)
//   worker inbox sf.stream.<id>.worker.<n>.cmd    update_prompts | switch_prompt       (request/reply)
//   heartbeat    sf.stream.<id>.worker.<n>.hb     WorkerHeartbeat, every heartbeatIntervalMs
//   events       sf.stream.<id>.evt               StreamEvent (input ended, degraded, output failed, ...)
import { z } from 'zod';

export const PromptEntry = z.object({ id: z.string(), prompt: z.record(z.string(), z.unknown()) });

export const PipelineConfig = z.object({
  streamId: z.string(),
  workerId: z.string(),
  subscribeUrl: z.string(),
  publishUrl: z.string(),
  controlUrl: z.string().optional(),
  eventsUrl: z.string().optional(),
  width: z.number().int(),
  height: z.number().int(),
  prompts: z.array(PromptEntry).min(1),
  activePromptId: z.string(),
});
export type PipelineConfig = z.infer<typeof PipelineConfig>;

export const ProcCommand = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ping') }),
  z.object({ type: z.literal('attach'), pipeline: PipelineConfig }),
  z.object({ type: z.literal('detach'), streamId: z.string() }),
  z.object({ type: z.literal('shutdown') }),
]);
export type ProcCommand = z.infer<typeof ProcCommand>;

export const WorkerCommand = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('update_prompts'),
    prompts: z.array(PromptEntry).min(1),
    activePromptId: z.string(),
    width: z.number().int().optional(),
    height: z.number().int().optional(),
    warmup: z.boolean().optional(),
  }),
  z.object({ type: z.literal('switch_prompt'), promptId: z.string() }),
]);
export type WorkerCommand = z.infer<typeof WorkerCommand>;

/** Every reply: ok with a result, or a typed error (code + message) the runtime maps to its own. */
export const Reply = z.union([
  z.object({ ok: z.literal(true), result: z.record(z.string(), z.unknown()).default({}) }),
  z.object({ ok: z.literal(false), code: z.string(), message: z.string() }),
]);
export type Reply = z.infer<typeof Reply>;

export const WorkerStats = z.object({
  frameCount: z.number(),
  fpsIn: z.number(),
  fpsOut: z.number(),
  latencyP50Ms: z.number(),
  latencyP99Ms: z.number(),
  /** Added latency of each frame output since the last heartbeat (for histograms). */
  latenciesMs: z.array(z.number()),
  dropsByReason: z.record(z.string(), z.number()),
  degraded: z.boolean(),
});
export type WorkerStats = z.infer<typeof WorkerStats>;

export const WorkerHeartbeat = z.object({
  pid: z.number(),
  streamId: z.string(),
  workerId: z.string(),
  state: z.enum(['warmup', 'running']),
  activePromptId: z.string(),
  stats: WorkerStats,
});
export type WorkerHeartbeat = z.infer<typeof WorkerHeartbeat>;

export const StreamEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('input_ended'), reason: z.enum(['input_ended', 'input_timeout', 'control_closed']), detail: z.string().optional() }),
  z.object({ type: z.literal('output_failed'), reason: z.string() }),
  z.object({ type: z.literal('degraded'), degraded: z.boolean() }),
  z.object({ type: z.literal('first_output'), latencyMs: z.number() }),
  z.object({ type: z.literal('control'), params: z.record(z.string(), z.unknown()) }),
]);
export type StreamEvent = z.infer<typeof StreamEvent>;
