// The media path's public surface (see each module for details).
export type { VideoFrame, TimeBase } from './frame.ts';
export { MediaError, type MediaErrorCode } from './errors.ts';
export type { ByteSource } from './byte-source.ts';
export { coverCrop, FrameRateCap, type CropRect } from './geometry.ts';
export {
  decodeStream,
  newDecodeStats,
  releaseItem,
  type AudioPacket,
  type AudioTrack,
  type DecodedItem,
  type DecodeOptions,
  type DecodeStats,
  type InputInfo,
} from './decode.ts';
export { SegmentEncoder, YuvConverter, type EncodeOptions, type SegmentResult, type SegmentSink } from './encode.ts';
export { encodeSegment } from './encode-segment.ts';
export { transcodeSegment, identityTransform, type FrameTransform, type TranscodeOptions, type TranscodeResult } from './transcode.ts';
export { segmentFile, type TsSegment, type SegmentFileOptions } from './segmenter.ts';
export { processFile, type ProcessFileOptions, type ProcessFileResult } from './process-file.ts';
export { mediaSelfTest, type SelfTestReport } from './selftest.ts';
