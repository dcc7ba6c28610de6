// The one boundary where nats.js errors become our typed errors (style #7): matched by class and
// by JetStream API code, never by message text.
import { ClosedConnectionError, DrainingConnectionError, NoRespondersError, RequestError, TimeoutError } from '@nats-io/transport-node';
import {
  BusClosedError,
  BusError,
  BusInternalError,
  BusNoRespondersError,
  BusTimeoutError,
  KvRevisionMismatchError,
} from '../bus.ts';

/** JetStream "wrong last sequence": the compare-and-set precondition did not hold. */
const JS_WRONG_LAST_SEQUENCE = new Set([10071, 10164]);

function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  let e: unknown = err;
  while (e && out.length < 8) {
    out.push(e);
    e = e instanceof Error ? e.cause : undefined;
  }
  return out;
}

export interface NatsErrorContext {
  subject?: string;
  timeoutMs?: number;
  bucket?: string;
  key?: string;
  expectedRevision?: number;
}

export function mapNatsError(err: unknown, ctx: NatsErrorContext = {}): BusError {
  if (err instanceof BusError) return err;
  const chain = causes(err);
  const subject = ctx.subject ?? '';
  for (const e of chain) {
    if (e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders())) {
      return new BusNoRespondersError(subject, { cause: err });
    }
  }
  for (const e of chain) {
    if (e instanceof TimeoutError) return new BusTimeoutError(subject, ctx.timeoutMs ?? 0, { cause: err });
    if (e instanceof ClosedConnectionError || e instanceof DrainingConnectionError) return new BusClosedError('NATS connection is closed', { cause: err });
    const code = (e as { code?: unknown } | null)?.code;
    if (ctx.bucket !== undefined && typeof code === 'number' && JS_WRONG_LAST_SEQUENCE.has(code)) {
      return new KvRevisionMismatchError(ctx.bucket, ctx.key ?? '', ctx.expectedRevision ?? 0, { cause: err });
    }
  }
  return new BusInternalError(err instanceof Error ? err.message : String(err), { cause: err });
}
