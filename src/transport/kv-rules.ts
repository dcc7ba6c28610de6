// NATS KV naming rules, applied by every implementation so that a name valid on one bus is valid
// on all (nats.js: bucket `^[-\w]+$`; key `^[-/=.\w]+$`, no leading/trailing '.'; filters add `*`, `>`).
import { KvInvalidBucketError, KvInvalidKeyError } from './bus.ts';

const BUCKET = /^[-\w]+$/u;
const KEY = /^[-/=.\w]+$/u;
const FILTER = /^[-/=.>*\w]+$/u;

export function checkBucket(bucket: string): string {
  if (!BUCKET.test(bucket)) throw new KvInvalidBucketError(bucket);
  return bucket;
}

function tokensOk(k: string, wild: boolean): boolean {
  const tokens = k.split('.');
  return tokens.every((t, i) => t.length > 0 && (!wild || ((t !== '>' || i === tokens.length - 1) && (t === '*' || t === '>' || !/[*>]/u.test(t)))));
}

export function checkKey(key: string): string {
  if (typeof key !== 'string' || !KEY.test(key) || !tokensOk(key, false)) throw new KvInvalidKeyError(key);
  return key;
}

export function checkKeyFilter(filter: string): string {
  if (typeof filter !== 'string' || !FILTER.test(filter) || !tokensOk(filter, true)) throw new KvInvalidKeyError(filter);
  return filter;
}
