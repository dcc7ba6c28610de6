// The inbox protocol of a stream actor on the bus (subjects.streamCmd(id)): the node hosting the
// stream answers; any node's StreamRuntime sends. Both ways are typed: each command has a request
// schema and a reply schema, and the sender parses the reply (never casts it). Replies use the worker
// protocol's `Reply` envelope, with a registry code (src/errors.ts) on failure, so an edge on another
// node answers the same.
import { z } from 'zod';
import { isErrorCode, SfError } from '../errors.ts';
import { StreamSpec, StreamStatus } from '../stream-spec.ts';
import type { BusMsg } from '../transport/bus.ts';
import { Reply } from '../transport/worker-protocol.ts';

export const UpdatePromptsParameters = z.object({ width: z.number().int().optional(), height: z.number().int().optional(), warmup: z.boolean().optional() });
export type UpdatePromptsParameters = z.infer<typeof UpdatePromptsParameters>;

export const StreamCommand = z.discriminatedUnion('type', [
  z.object({ type: z.literal('status') }),
  /** Stop and answer once the stream is over (or stopTimeoutMs passed). */
  z.object({ type: z.literal('stop') }),
  /** Prompts as the client sent them: the stream's host validates them (once), so a stream that is not there answers 404 first. */
  z.object({ type: z.literal('update_prompts'), prompts: z.array(z.unknown()).min(1), parameters: UpdatePromptsParameters.optional() }),
  z.object({ type: z.literal('restart_worker') }),
  z.object({ type: z.literal('switch_prompt'), promptId: z.string() }),
  z.object({ type: z.literal('workspace_info') }),
  /** Drop an ended stream now (its id is being started again). */
  z.object({ type: z.literal('forget') }),
]);
export type StreamCommand = z.infer<typeof StreamCommand>;

export const UpdatePromptsResult = z.object({ prompts_count: z.number(), parameters_updated: z.boolean(), warmup_performed: z.boolean() });
export type UpdatePromptsResult = z.infer<typeof UpdatePromptsResult>;

export const WorkspaceInfo = z.object({
  workspace_path: z.string(),
  config_keys: z.array(z.string()),
  total_workers: z.number(),
  active_prompt_id: z.string().nullable(),
});
export type WorkspaceInfo = z.infer<typeof WorkspaceInfo>;

const Empty = z.object({});

/** What each command answers. */
export const StreamCommandResult = {
  status: z.object({ status: StreamStatus }),
  stop: Empty,
  update_prompts: UpdatePromptsResult,
  restart_worker: Empty,
  switch_prompt: z.object({ active_prompt_id: z.string() }),
  workspace_info: z.object({ info: WorkspaceInfo }),
  forget: Empty,
} satisfies Record<StreamCommand['type'], z.ZodType>;

export function okReply(result: Record<string, unknown> = {}): Reply {
  return { ok: true, result };
}

export function errorReply(err: unknown): Reply {
  if (err instanceof SfError) return { ok: false, code: err.code, message: err.message, ...(Object.keys(err.details).length ? { details: err.details } : {}) };
  return { ok: false, code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/**
 * Answers one request of an inbox: the command parsed with `schema` (a malformed one answers
 * BAD_REQUEST), run, and its result or its error sent back as a Reply.
 */
export async function answer<C>(m: BusMsg, schema: z.ZodType<C>, what: string, run: (cmd: C) => Promise<Record<string, unknown>>): Promise<void> {
  let cmd: C;
  try {
    cmd = schema.parse(m.json());
  } catch {
    m.respond(errorReply(new SfError('BAD_REQUEST', `malformed ${what}`)));
    return;
  }
  try {
    m.respond(okReply(await run(cmd)));
  } catch (err) {
    m.respond(errorReply(err));
  }
}

/** The result of a reply, parsed with the command's result schema, or the SfError it carries. */
export function unwrapReply<R>(raw: unknown, schema: z.ZodType<R>): R {
  const r = Reply.safeParse(raw);
  if (!r.success) throw new SfError('BAD_REPLY', 'malformed reply from the stream host');
  if (!r.data.ok) throw new SfError(isErrorCode(r.data.code) ? r.data.code : 'INTERNAL', r.data.message, r.data.details ?? {});
  const result = schema.safeParse(r.data.result);
  if (!result.success) throw new SfError('BAD_REPLY', `a reply does not match its schema: ${result.error.issues[0]?.message ?? ''}`);
  return result.data;
}

/** The inbox protocol of a node (subjects.nodeCmd): what placement, hand-over and drain ask of it. */
export const NodeCommand = z.discriminatedUnion('type', [
  /** Run this stream here (placement chose this node); answers once it runs, like POST /stream/start. */
  z.object({ type: z.literal('start'), spec: StreamSpec }),
  /** Start a copy of the stream ahead of a hand-over (its output waits until the record names this node); answers once it runs. */
  z.object({ type: z.literal('adopt'), id: z.string() }),
  /** Stop taking streams, hand every stream to other nodes, then leave. Answers at once. */
  z.object({ type: z.literal('drain') }),
  /** Are you there? (A node whose heartbeat looks stale is asked before its streams are taken.) */
  z.object({ type: z.literal('ping') }),
]);
export type NodeCommand = z.infer<typeof NodeCommand>;

export const NodeCommandResult = {
  start: z.object({ status: StreamStatus }),
  adopt: z.object({ epoch: z.number().int() }),
  drain: z.object({ streams: z.number().int() }),
  ping: z.object({ nodeId: z.string() }),
} satisfies Record<NodeCommand['type'], z.ZodType>;
