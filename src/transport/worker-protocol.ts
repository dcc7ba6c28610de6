// The control protocol between a node's actor runtime and its worker processes, over the bus.
// Raw frames never travel here: only commands, replies, heartbeats with stats, and stream events.
//
// A worker PROCESS hosts one or more STREAM PIPELINES (dedicated / prompt_worker: one; shared: many).
// A pipeline owns its stream's media path (trickle in -> decode -> graph -> encode -> trickle out) and
// one or more WORKERS: inference workers, each holding compiled, warm graph(s) in its own thread
// (dedicated: one worker with all the stream's prompts; prompt_worker: one worker per prompt;
// shared: one worker 'shared'). Frames go to the worker of the active prompt.
//
//   proc inbox   sf.proc.<procId>.cmd             ProcCommand   (request/reply, Reply)
//   heartbeat    sf.stream.<id>.worker.<w>.hb     WorkerHeartbeat, every heartbeatIntervalMs
//   events       sf.stream.<id>.evt               StreamEvent (input ended, degraded, output failed, ...)
import { z } from 'zod';
import { PipelineSpec, StreamPrompt } from '../stream-spec.ts';

export const ProcCommand = z.discriminatedUnion('type', [
  /** Answers once the process joined the bus: {pid}. */
  z.object({ type: z.literal('ping') }),
  /** Opens (idempotently) the stream's pipeline; media starts once the active prompt's worker is warm. */
  z.object({ type: z.literal('open_stream'), stream: PipelineSpec }),
  /** Compiles and warms `prompts` in a new inference worker; answers {warmupMs} once warm. */
  z.object({
    type: z.literal('add_worker'),
    streamId: z.string(),
    workerId: z.string(),
    prompts: z.array(StreamPrompt).min(1),
  }),
  /** Swaps a worker's prompts (compiled beside the running graph, swapped at a frame boundary). */
  z.object({
    type: z.literal('update_prompts'),
    streamId: z.string(),
    workerId: z.string(),
    prompts: z.array(StreamPrompt).min(1),
    width: z.number().int().optional(),
    height: z.number().int().optional(),
  }),
  z.object({ type: z.literal('switch_prompt'), streamId: z.string(), promptId: z.string() }),
  z.object({ type: z.literal('remove_worker'), streamId: z.string(), workerId: z.string() }),
  /** Tells the gateway, on the stream's `-events` channel, that something it sent could not apply. */
  z.object({
    type: z.literal('report_error'),
    streamId: z.string(),
    errorType: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
  /** Stops the pipeline: closes the output channel (DELETE), ends its workers. */
  z.object({ type: z.literal('close_stream'), streamId: z.string() }),
  /** Closes every pipeline and exits. */
  z.object({ type: z.literal('shutdown') }),
]);
export type ProcCommand = z.infer<typeof ProcCommand>;

/** Every reply: ok with a result, or a typed error (code + message) the runtime maps to its own. */
export const Reply = z.union([
  z.object({ ok: z.literal(true), result: z.record(z.string(), z.unknown()).default({}) }),
  /** `details`: fields for the client's error body (a prompt's `validation_errors`, say). */
  z.object({ ok: z.literal(false), code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
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
  /** Pts (decimal string, input time base) of the last frame published, for resume after a crash. */
  lastOutputPts: z.string().optional(),
  /** The input (raw) pts of the frame that went out as lastOutputPts. */
  lastInputPts: z.string().optional(),
});
export type WorkerStats = z.infer<typeof WorkerStats>;

export const WorkerHeartbeat = z.object({
  pid: z.number(),
  streamId: z.string(),
  workerId: z.string(),
  activePromptId: z.string(),
  stats: WorkerStats,
  /** Set once the input is over: repeated by every heartbeat, so a lost `input_ended` event (a bus outage) is not the end's only news. */
  inputEnded: z.object({ reason: z.enum(['input_ended', 'input_timeout', 'control_closed']), detail: z.string().optional() }).optional(),
});
export type WorkerHeartbeat = z.infer<typeof WorkerHeartbeat>;

export const StreamEvent = z.discriminatedUnion('type', [
  /** The input is over: it ended after data (404/Closed), never appeared, or the control channel closed. */
  z.object({ type: z.literal('input_ended'), reason: z.enum(['input_ended', 'input_timeout', 'control_closed']), detail: z.string().optional() }),
  /** The output channel failed past its retries. */
  z.object({ type: z.literal('output_failed'), reason: z.string() }),
  /** No input for degradedInputMs (true), or input flowing again (false). */
  z.object({ type: z.literal('degraded'), degraded: z.boolean() }),
  z.object({ type: z.literal('first_output'), latencyMs: z.number() }),
  /** The input's timestamps restarted, wrapped or jumped; the output continues rebased (strictly increasing). */
  z.object({ type: z.literal('discontinuity'), kind: z.string(), stream: z.string(), from_pts: z.string(), to_pts: z.string(), offset: z.string() }),
  /** A JSON message from the `-control` channel (other than keep-alives), for the stream actor to apply. */
  z.object({ type: z.literal('control'), params: z.record(z.string(), z.unknown()) }),
]);
export type StreamEvent = z.infer<typeof StreamEvent>;

