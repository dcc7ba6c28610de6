// encodeSegment: the non-pipelined convenience over SegmentEncoder, for callers that already hold
// a segment's items (decoded and transformed) as an iterable.
import type { AudioTrack, DecodedItem } from './decode.ts';
import { SegmentEncoder, type EncodeOptions, type SegmentResult, type SegmentSink } from './encode.ts';

/**
 * Encodes items into one output segment on `sink`. The audio track is taken from `opts.audio`
 * or, failing that, from the first audio packet (which must then come before the first frame
 * for audio to be kept). Error items are skipped: the caller has them from the decoder.
 */
export async function encodeSegment(
  items: AsyncIterable<DecodedItem> | Iterable<DecodedItem>,
  sink: SegmentSink,
  opts: EncodeOptions = {},
): Promise<SegmentResult> {
  let audio: AudioTrack | null = opts.audio ?? null;
  let enc: SegmentEncoder | null = null;
  try {
    for await (const item of items) {
      if (item.kind === 'error') continue;
      if (!enc && item.kind === 'audio') audio ??= item.audio.track;
      enc ??= new SegmentEncoder(sink, { ...opts, audio });
      if (item.kind === 'video') await enc.writeVideo(item.frame);
      else await enc.writeAudio(item.audio);
    }
    enc ??= new SegmentEncoder(sink, opts);
    return await enc.end();
  } catch (err) {
    await enc?.abort(err);
    throw err;
  }
}
