// Typed media errors. Text coming out of FFmpeg becomes one of these at exactly one boundary
// (decode.ts / encode.ts / segmenter.ts); callers branch on `code`, never on message text.
import { CodedError, type CodeOf } from '../errors.ts';

/** The codes (src/errors.ts registry, layer media). */
export type MediaErrorCode = CodeOf<'media'>;

export class MediaError extends CodedError<MediaErrorCode> {}

/** Wraps anything thrown by node-av into a MediaError with the given code (MediaErrors pass through). */
export function asMediaError(code: MediaErrorCode, what: string, err: unknown): MediaError {
  if (err instanceof MediaError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new MediaError(code, `${what}: ${detail}`, { cause: err });
}
