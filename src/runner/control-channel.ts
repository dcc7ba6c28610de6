// The stream's `-control` trickle channel: each segment is one JSON object of new params from the
// gateway. Keep-alives are ignored; a message that is not a JSON object goes to `onRejected` (an
// error event for the gateway); anything else goes to `onParams` for the stream actor to validate
// and apply. A 404 (the channel is gone) means the gateway stopped the stream.
import type { TrickleConfig } from '../config.ts';
import type { Logger } from '../log.ts';
import { TrickleSubscriber } from '../transport/trickle/subscriber.ts';

export interface ControlOptions {
  config: TrickleConfig;
  /** How long the channel may take to appear. */
  waitMs: number;
  /** Largest control message read; a longer one is skipped. */
  maxBytes: number;
  log: Logger;
  onParams: (params: Record<string, unknown>) => void;
  /** A message that is not a JSON object (or too large, or cut off): the gateway is told, it is not applied. */
  onRejected: (r: { seq: number; reason: 'cut_off' | 'too_large' | 'not_json' | 'not_object'; message: string }) => void;
  /** The channel ended (404 or closed): the stream should stop. */
  onClosed: (detail: string) => void;
}

function isKeepAlive(v: Record<string, unknown>): boolean {
  return Object.keys(v).length === 1 && v.keep === 'alive';
}

/** Reads the control channel until it ends or `sub.close()`; never throws. */
export function followControl(url: string, o: ControlOptions): TrickleSubscriber {
  const sub = new TrickleSubscriber(url, { start: 'current', config: o.config, logger: o.log, waitForChannel: o.waitMs });
  // After the first segment a 404 means the gateway removed the channel: do not wait for it again.
  let seen = 0;
  let gone = false;
  sub.on('segment', () => seen++);
  sub.on('waiting-for-channel', () => {
    if (seen === 0) return;
    gone = true;
    sub.close();
  });
  void (async () => {
    try {
      for await (const seg of sub) {
        const parts: Buffer[] = [];
        let n = 0;
        let tooBig = false;
        try {
          for await (const c of seg.body) {
            n += c.length;
            if (n > o.maxBytes) {
              tooBig = true;
              break;
            }
            parts.push(Buffer.from(c));
          }
        } catch (err) {
          o.onRejected({ seq: seg.seq, reason: 'cut_off', message: `control message ${seg.seq} was cut off: ${(err as Error).message}` });
          continue;
        }
        if (tooBig) {
          o.onRejected({ seq: seg.seq, reason: 'too_large', message: `control message ${seg.seq} is larger than ${o.maxBytes} bytes` });
          continue;
        }
        let v: unknown;
        try {
          v = JSON.parse(Buffer.concat(parts).toString('utf8'));
        } catch (err) {
          o.onRejected({ seq: seg.seq, reason: 'not_json', message: `control message ${seg.seq} is not JSON: ${(err as Error).message}` });
          continue;
        }
        if (!v || typeof v !== 'object' || Array.isArray(v)) {
          o.onRejected({ seq: seg.seq, reason: 'not_object', message: `control message ${seg.seq} is not a JSON object` });
          continue;
        }
        const params = v as Record<string, unknown>;
        if (isKeepAlive(params)) continue;
        o.onParams(params);
      }
    } catch (err) {
      o.log.warn({ err }, 'control channel failed');
      if (sub.endReason !== 'aborted') o.onClosed(`control channel failed: ${(err as Error).message}`);
      return;
    }
    if (gone || sub.endReason === 'not_found' || sub.endReason === 'closed') o.onClosed(`control channel ${gone ? 'not_found' : sub.endReason}`);
  })();
  return sub;
}
