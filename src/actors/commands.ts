// The inbox protocol of a stream actor on the bus (subjects.streamCmd(id)): the node hosting the
// stream answers; any node's StreamRuntime sends. Replies use the worker protocol's `Reply` shape,
// with an SfError code (src/errors.ts) on failure, so an edge on another node answers the same.
import { z } from 'zod';
import { ERROR_CODES, SfError, type ErrorCode } from '../errors.ts';
import { PromptEntry, Reply } from '../transport/worker-protocol.ts';

export const StreamCommand = z.discriminatedUnion('type', [
  z.object({ type: z.literal('status') }),
  /** Stop and answer once the stream is over (or stopTimeoutMs passed). */
  z.object({ type: z.literal('stop') }),
  z.object({
    type: z.literal('update_prompts'),
    prompts: z.array(PromptEntry).min(1),
    parameters: z
      .object({ width: z.number().int().optional(), height: z.number().int().optional(), warmup: z.boolean().optional() })
      .optional(),
  }),
  z.object({ type: z.literal('restart_worker') }),
  z.object({ type: z.literal('switch_prompt'), promptId: z.string() }),
  z.object({ type: z.literal('workspace_info') }),
  /** Drop an ended stream now (its id is being started again). */
  z.object({ type: z.literal('forget') }),
]);
export type StreamCommand = z.infer<typeof StreamCommand>;

export function okReply(result: Record<string, unknown> = {}): Reply {
  return { ok: true, result };
}

export function errorReply(err: unknown): Reply {
  if (err instanceof SfError) return { ok: false, code: err.code, message: err.message };
  return { ok: false, code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** The result of a reply, or the SfError it carries. */
export function unwrapReply(raw: unknown): Record<string, unknown> {
  const r = Reply.safeParse(raw);
  if (!r.success) throw new SfError('INTERNAL', 'malformed reply from the stream host');
  if (r.data.ok) return r.data.result;
  const code = (r.data.code in ERROR_CODES ? r.data.code : 'INTERNAL') as ErrorCode;
  throw new SfError(code, r.data.message);
}
