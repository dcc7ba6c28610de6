// The input's audio as the output muxer copies it: the stream's codec parameters and its packets,
// untouched (see audio-passthrough.ts for where they come from).
import type { CodecParameters, Packet } from 'node-av';
import type { TimeBase } from './frame.ts';

/** The input's audio stream as the muxer needs it to copy packets into an output (owned copy). */
export interface AudioTrack {
  readonly codecpar: CodecParameters;
  readonly timeBase: TimeBase;
}

/** One audio packet, untouched. `packet` is an owned node-av packet: the encoder frees it. */
export interface AudioPacket {
  readonly track: AudioTrack;
  readonly packet: Packet;
  readonly pts: bigint;
  readonly timeBase: TimeBase;
}
