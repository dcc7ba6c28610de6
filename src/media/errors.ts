// Typed media errors. Text coming out of FFmpeg becomes one of these at exactly one boundary
// (decode.ts / encode.ts / segmenter.ts); callers branch on `code`, never on message text.
import type { CodeOf } from '../errors.ts';

/** The codes (src/errors.ts registry, layer media). */
export type MediaErrorCode = CodeOf<'media'>;

export class MediaError extends Error {
  override readonly name = 'MediaError';
  constructor(
    readonly code: MediaErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Wraps anything thrown by node-av into a MediaError with the given code (MediaErrors pass through). */
export function asMediaError(code: MediaErrorCode, what: string, err: unknown): MediaError {
  if (err instanceof MediaError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new MediaError(code, `${what}: ${detail}`, { cause: err });
}
