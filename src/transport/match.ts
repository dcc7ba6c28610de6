// Subject syntax and wildcard matching with NATS rules, for the embedded bus and its KV watch.
// Tokens are separated by '.', none empty; `*` matches exactly one token, `>` (last only) one or more.
import { BusInvalidSubjectError } from './bus.ts';

const WHITESPACE = /\s/u;

function checkTokens(subject: string, wildcards: boolean): string[] {
  if (subject.length === 0) throw new BusInvalidSubjectError(subject, 'empty');
  if (WHITESPACE.test(subject)) throw new BusInvalidSubjectError(subject, 'contains whitespace');
  const tokens = subject.split('.');
  tokens.forEach((t, i) => {
    if (t.length === 0) throw new BusInvalidSubjectError(subject, 'empty token');
    if (t === '*' || t === '>') {
      if (!wildcards) throw new BusInvalidSubjectError(subject, 'wildcards are only for subscriptions');
      if (t === '>' && i !== tokens.length - 1) throw new BusInvalidSubjectError(subject, "'>' must be the last token");
    }
  });
  return tokens;
}

/** Tokens of a concrete subject (publish); throws BusInvalidSubjectError. */
export function publishTokens(subject: string): string[] {
  return checkTokens(subject, false);
}

/** Tokens of a subscription pattern (may hold `*` and a final `>`); throws BusInvalidSubjectError. */
export function patternTokens(subject: string): string[] {
  return checkTokens(subject, true);
}

export function tokensMatch(pattern: readonly string[], subject: readonly string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i];
    if (p === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (p !== '*' && p !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

export function subjectMatches(pattern: string, subject: string): boolean {
  return tokensMatch(pattern.split('.'), subject.split('.'));
}
