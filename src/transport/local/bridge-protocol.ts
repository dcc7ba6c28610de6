// The IPC protocol between a forked worker process (bridge-child.ts) and the bus of its parent
// (bridge-parent.ts). Every bus message carries `sfbus: 1`, so the same IPC channel can carry other
// messages too; both ends validate with zod and drop what does not parse (bad input never crashes).
// Payloads travel as base64 so the channel works with the default JSON serialization of `fork`.
import { z } from 'zod';
import {
  BusClosedError,
  BusDecodeError,
  BusError,
  BusInternalError,
  BusInvalidSubjectError,
  BusNoRespondersError,
  BusTimeoutError,
  KvInvalidBucketError,
  KvInvalidKeyError,
  KvRevisionMismatchError,
} from '../bus.ts';

const tag = z.literal(1);
const id = z.number().int().nonnegative();
const b64 = z.string();

export const ChildToParentSchema = z.discriminatedUnion('op', [
  z.object({ sfbus: tag, op: z.literal('sub'), sid: id, subject: z.string(), queue: z.string().optional() }),
  z.object({ sfbus: tag, op: z.literal('unsub'), sid: id }),
  z.object({ sfbus: tag, op: z.literal('pub'), subject: z.string(), data: b64 }),
  z.object({ sfbus: tag, op: z.literal('req'), id, subject: z.string(), data: b64, timeoutMs: z.number().int().positive().optional() }),
  z.object({ sfbus: tag, op: z.literal('flush'), id }),
  z.object({
    sfbus: tag,
    op: z.literal('kv'),
    id,
    bucket: z.string(),
    method: z.enum(['open', 'get', 'put', 'create', 'update', 'delete', 'keys']),
    key: z.string().optional(),
    value: b64.optional(),
    revision: z.number().int().optional(),
  }),
  z.object({ sfbus: tag, op: z.literal('watch'), id, wid: id, bucket: z.string(), key: z.string().optional(), initial: z.boolean().optional() }),
  z.object({ sfbus: tag, op: z.literal('unwatch'), wid: id }),
]);
export type ChildToParent = z.infer<typeof ChildToParentSchema>;

export const WireErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  subject: z.string().optional(),
  timeoutMs: z.number().optional(),
  bucket: z.string().optional(),
  key: z.string().optional(),
  expectedRevision: z.number().optional(),
});
export type WireError = z.infer<typeof WireErrorSchema>;

const WireMsgSchema = z.object({ subject: z.string(), data: b64, reply: z.string().optional() });
const WireEntrySchema = z.object({ key: z.string(), value: b64, revision: z.number().int() });

export const ParentToChildSchema = z.discriminatedUnion('op', [
  z.object({ sfbus: tag, op: z.literal('msg'), sid: id, subject: z.string(), data: b64, reply: z.string().optional() }),
  z.object({ sfbus: tag, op: z.literal('subend'), sid: id }),
  // One member per `op` (zod discriminated unions need unique tags): `error` is set when `ok` is false.
  z.object({ sfbus: tag, op: z.literal('res'), id, ok: z.boolean(), result: z.unknown().optional(), error: WireErrorSchema.optional() }),
  z.object({
    sfbus: tag,
    op: z.literal('wev'),
    wid: id,
    key: z.string(),
    value: b64,
    revision: z.number().int(),
    operation: z.enum(['PUT', 'DEL']),
  }),
  z.object({ sfbus: tag, op: z.literal('wend'), wid: id }),
]);
export type ParentToChild = z.infer<typeof ParentToChildSchema>;

/** Results of `res` per request kind. */
export const ReqResultSchema = WireMsgSchema;
export const KvGetResultSchema = WireEntrySchema.nullable();
export const RevisionResultSchema = z.number().int();
export const KeysResultSchema = z.array(z.string());

/** Distributive Omit, so `Omit<Union, 'sfbus'>` keeps each member's own fields. */
type DistOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type ChildToParentBody = DistOmit<ChildToParent, 'sfbus'>;
export type ParentToChildBody = DistOmit<ParentToChild, 'sfbus'>;

export function isBusEnvelope(m: unknown): boolean {
  return typeof m === 'object' && m !== null && (m as { sfbus?: unknown }).sfbus === 1;
}

export function toB64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

export function fromB64(s: string): Uint8Array {
  const b = Buffer.from(s, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export function errorToWire(err: unknown): WireError {
  if (err instanceof BusError) {
    const e = err as BusError & Partial<Record<'subject' | 'bucket' | 'key', string>> & Partial<Record<'timeoutMs' | 'expectedRevision', number>>;
    return {
      code: e.code,
      message: e.message,
      subject: e.subject,
      timeoutMs: e.timeoutMs,
      bucket: e.bucket,
      key: e.key,
      expectedRevision: e.expectedRevision,
    };
  }
  return { code: 'BUS_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** Rebuilds the typed error the parent's bus threw, so the child can `instanceof` it as usual. */
export function errorFromWire(w: WireError): BusError {
  switch (w.code) {
    case 'BUS_TIMEOUT':
      return new BusTimeoutError(w.subject ?? '', w.timeoutMs ?? 0);
    case 'BUS_NO_RESPONDERS':
      return new BusNoRespondersError(w.subject ?? '');
    case 'BUS_CLOSED':
      return new BusClosedError(w.message);
    case 'BUS_INVALID_SUBJECT':
      return new BusInvalidSubjectError(w.subject ?? '', w.message);
    case 'BUS_DECODE':
      return new BusDecodeError(w.message);
    case 'KV_REVISION_MISMATCH':
      return new KvRevisionMismatchError(w.bucket ?? '', w.key ?? '', w.expectedRevision ?? 0);
    case 'KV_INVALID_KEY':
      return new KvInvalidKeyError(w.key ?? '');
    case 'KV_INVALID_BUCKET':
      return new KvInvalidBucketError(w.bucket ?? '');
    default:
      return new BusInternalError(w.message);
  }
}
