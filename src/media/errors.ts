// Typed media errors. Text coming out of FFmpeg becomes one of these at exactly one boundary
// (decode.ts / encode.ts / segmenter.ts); callers branch on `code`, never on message text.

export type MediaErrorCode =
  /** The segment's bytes could not be demuxed or decoded (not TS, zero length, no video, corrupt). */
  | 'MEDIA_DECODE_FAILED'
  /** The segment ended in the middle of a packet: the frames before the cut were delivered. */
  | 'MEDIA_SEGMENT_TRUNCATED'
  /** The encoder or muxer refused a frame or packet. */
  | 'MEDIA_ENCODE_FAILED'
  /** A file to be segmented could not be opened or holds no video. */
  | 'MEDIA_SEGMENT_FAILED'
  /** The start-up self-test did not decode its clip (usually the Promise.withResolvers polyfill is missing). */
  | 'MEDIA_SELFTEST_FAILED';

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
