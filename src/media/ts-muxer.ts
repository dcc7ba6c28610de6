// A live MPEG-TS muxer: every packet is written the moment it is given (av_write_frame, never
// interleaved) and flushed to the sink at once. node-av's Muxer interleaves by timestamp across
// streams (its own sync queue, then libavformat's), which holds each video packet until an audio
// packet with a later timestamp arrives: a whole audio PES (about a third of a second) of delay on
// every frame. Packets here arrive in the input's own order, which is already a valid TS order.
import '../polyfill.ts';
import { FormatContext, IOStream, Rational, type CodecContext, type Packet } from 'node-av';
import { AVFMT_FLAG_CUSTOM_IO, AV_NOPTS_VALUE } from 'node-av/constants';
import type { AudioTrack } from './audio-track.ts';
import { MediaError } from './errors.ts';
import { TS_TIME_BASE, type TimeBase } from './frame.ts';

const TS_TB = new Rational(TS_TIME_BASE.num, TS_TIME_BASE.den);

export class TsMuxer {
  private readonly fc = new FormatContext();
  private video = -1;
  private audio = -1;
  private started = false;
  private ended = false;
  private freed = false;
  private readonly lastDts: bigint[] = [];
  /** Each stream's time base once the header fixed it (read once, not per packet). */
  private timeBases: TimeBase[] = [];

  constructor(write: (buf: Buffer) => void) {
    let ret = this.fc.allocOutputContext2(null, 'mpegts', null);
    if (ret < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `cannot allocate the MPEG-TS muxer (${ret})`);
    // Every packet goes to the sink as soon as it is muxed.
    ret = this.fc.setOption('flush_packets', '1');
    if (ret < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `cannot set flush_packets (${ret})`);
    this.fc.pb = IOStream.createOutput({
      write: (buf: Buffer) => {
        write(buf);
        return buf.length;
      },
    });
    this.fc.setFlags(AVFMT_FLAG_CUSTOM_IO);
  }

  get isStarted(): boolean {
    return this.started;
  }

  get hasAudio(): boolean {
    return this.audio >= 0;
  }

  /** The video stream, described by an opened encoder. */
  addVideo(ctx: CodecContext): void {
    const st = this.fc.newStream(null);
    const ret = st.codecpar.fromContext(ctx);
    if (ret < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `cannot describe the video stream (${ret})`);
    st.timeBase = TS_TB;
    this.video = st.index;
  }

  /** An audio stream copied from the input. */
  addAudio(track: AudioTrack): void {
    const st = this.fc.newStream(null);
    const ret = track.codecpar.copy(st.codecpar);
    if (ret < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `cannot describe the audio stream (${ret})`);
    st.timeBase = TS_TB;
    this.audio = st.index;
  }

  /** Writes the program tables; streams cannot be added after this. */
  start(): void {
    const ret = this.fc.writeHeaderSync();
    if (ret < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `cannot write the MPEG-TS header (${ret})`);
    this.started = true;
    this.timeBases = this.fc.streams.map((st) => ({ num: st.timeBase.num, den: st.timeBase.den }));
  }

  /**
   * Writes one packet now (the muxer takes its data; the caller still frees the packet). A packet
   * whose dts does not follow its stream's last one cannot be muxed: answers false (the caller
   * counts it) instead of writing it. An interleaving muxer would have bent its timestamps.
   */
  write(pkt: Packet, kind: 'video' | 'audio', timeBase: TimeBase): boolean {
    const index = kind === 'video' ? this.video : this.audio;
    if (!this.started || index < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `no ${kind} stream to write to`);
    pkt.streamIndex = index;
    const to = this.timeBases[index];
    if (to && (to.num !== timeBase.num || to.den !== timeBase.den)) pkt.rescaleTs(timeBase, to);
    if (pkt.dts === AV_NOPTS_VALUE) pkt.dts = pkt.pts;
    const last = this.lastDts[index];
    if (pkt.dts === AV_NOPTS_VALUE || (last !== undefined && pkt.dts <= last)) return false;
    this.lastDts[index] = pkt.dts;
    const ret = this.fc.writeFrameSync(pkt);
    if (ret < 0) throw new MediaError('MEDIA_ENCODE_FAILED', `muxing a ${kind} packet failed (${ret})`);
    return true;
  }

  /** Writes the trailer (flushes what the muxer holds) and frees everything. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    try {
      if (this.started) this.fc.writeTrailerSync();
    } finally {
      this.free();
    }
  }

  /** Frees without a trailer (an abandoned segment). */
  free(): void {
    this.ended = true;
    if (this.freed) return;
    this.freed = true;
    // Custom IO: the format context must not own the IO context when it is freed.
    const pb = this.fc.pb;
    this.fc.pb = null;
    this.fc.freeContext();
    pb?.freeContext();
  }
}
