// `streamfleet pull <channel-url> <out.ts>`: subscribes to a trickle channel and writes every
// segment's bytes, concatenated, until the channel closes or --timeout passes (both exit 0).
// A segment cut off mid-way keeps the bytes that arrived; pulling goes on with the next one.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { defaultConfig } from '../../config.ts';
import { createLogger } from '../../log.ts';
import { SegmentTruncatedError } from '../../transport/trickle/errors.ts';
import { parseCommandArgs, usageError } from '../args.ts';
import { TrickleSubscriber, type TrickleSubscriberOptions } from '../../transport/trickle/subscriber.ts';

export const usage =
  'pull <channel-url> <out.ts> [--from next|current|SEQ] [--timeout SECONDS] [--wait-for-channel SECONDS]   save a trickle channel to a file';

function parseFrom(s: string): TrickleSubscriberOptions['start'] | null {
  if (s === 'next' || s === 'current') return s;
  return /^\d+$/.test(s) ? Number(s) : null;
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('pull', usage, argv, {
    from: { type: 'string', default: 'next' },
    timeout: { type: 'string' },
    'wait-for-channel': { type: 'string' },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const start = parseFrom(values.from);
  const timeoutS = values.timeout === undefined ? null : Number(values.timeout);
  const waitS = values['wait-for-channel'] === undefined ? 0 : Number(values['wait-for-channel']);
  if (positionals.length !== 2 || start === null || (timeoutS !== null && !(timeoutS > 0)) || !(waitS >= 0)) {
    return usageError('pull', usage);
  }
  const [url, outPath] = positionals;
  try {
    new URL(url);
  } catch {
    process.stderr.write(`streamfleet pull: bad channel URL '${url}'\n`);
    return 2;
  }
  const logger = createLogger();
  const out = createWriteStream(outPath);
  try {
    await once(out, 'open');
  } catch (err) {
    process.stderr.write(`streamfleet pull: cannot write ${outPath}: ${(err as Error).message}\n`);
    return 1;
  }
  const timeout = new AbortController();
  const timer = timeoutS === null ? null : setTimeout(() => timeout.abort(), timeoutS * 1000);
  const sub = new TrickleSubscriber(url, {
    start,
    signal: timeout.signal,
    logger,
    config: defaultConfig.trickle,
    waitForChannel: waitS * 1000,
  });
  let segments = 0;
  let bytes = 0;
  let code = 0;
  try {
    for await (const seg of sub) {
      segments++;
      try {
        for await (const chunk of seg.body) {
          bytes += chunk.length;
          if (!out.write(chunk)) await once(out, 'drain');
        }
      } catch (err) {
        if (!(err instanceof SegmentTruncatedError)) throw err;
        logger.warn({ seq: seg.seq, bytes: err.bytes }, 'segment cut off; going on with the next');
      }
    }
  } catch (err) {
    process.stderr.write(`streamfleet pull: ${(err as Error).message}\n`);
    code = 1;
  } finally {
    if (timer) clearTimeout(timer);
    sub.close();
    out.end();
    await once(out, 'close').catch(() => undefined);
  }
  const reason = timeout.signal.aborted ? 'timeout' : sub.endReason;
  if (reason === 'not_found' && segments === 0) {
    process.stderr.write(`streamfleet pull: channel not found: ${url}\n`);
    code = 1;
  }
  process.stderr.write(`pulled ${segments} segments, ${bytes} bytes (${reason})\n`);
  return code;
}
