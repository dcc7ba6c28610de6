// The media path's public surface (see each module for details).
export type { VideoFrame, TimeBase } from './frame.ts';
export { MediaError, type MediaErrorCode } from './errors.ts';
export { coverCrop, FrameRateCap, type CropRect } from './geometry.ts';
export type { AudioPacket, AudioTrack } from './audio-track.ts';
export { AudioPassthrough } from './audio-passthrough.ts';
export { TsDemuxer, type TsEvent, type TsProgram, type TsUnit } from './ts-demux.ts';
export { VideoDecoder, isDecodableVideo, type VideoDecoderOptions } from './video-decoder.ts';
export { SegmentEncoder, YuvConverter, type EncodeOptions, type SegmentResult, type SegmentSink } from './encode.ts';
export { segmentFile, type TsSegment, type SegmentFileOptions } from './segmenter.ts';
export { mediaSelfTest, type SelfTestReport } from './selftest.ts';
