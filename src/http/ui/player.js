// The selected stream's output, live, in a <video>: GET /stream/{id}/output.ts is one continuous
// MPEG-TS stream (the edge relays the stream's output trickle channel), which mpegts.js (served from
// the service's own node_modules) demuxes and remuxes to fragmented MP4 for Media Source Extensions.
// It chases the live edge, and starts over when the picture stops advancing (a worker restart can
// leave a gap it does not cross by itself).

const STALL_CHECK_MS = 2_000;

export class LivePlayer {
  constructor(video, statusEl) {
    this.video = video;
    this.statusEl = statusEl;
    this.player = null;
    this.url = null;
    this.watch = null;
    this.lastTime = -1;
    this.restarts = 0;
  }

  get supported() {
    return typeof window.mpegts !== 'undefined' && window.mpegts.isSupported();
  }

  status(text) {
    this.statusEl.textContent = text;
  }

  play(url) {
    this.stop();
    this.url = url;
    if (!this.supported) {
      this.status('This browser cannot play MPEG-TS through Media Source Extensions.');
      return;
    }
    this.open();
    this.watch = setInterval(() => this.checkStall(), STALL_CHECK_MS);
  }

  open() {
    const mpegts = window.mpegts;
    const p = mpegts.createPlayer(
      { type: 'mpegts', isLive: true, url: this.url },
      {
        enableWorker: false,
        enableStashBuffer: false,
        lazyLoad: false,
        liveBufferLatencyChasing: true,
        liveBufferLatencyMaxLatency: 1.5,
        liveBufferLatencyMinRemain: 0.3,
      },
    );
    p.on(mpegts.Events.ERROR, (type, detail) => this.status(`player: ${type} ${detail}`));
    p.attachMediaElement(this.video);
    p.load();
    const started = this.video.play();
    if (started && typeof started.catch === 'function') started.catch(() => undefined);
    this.player = p;
    this.lastTime = -1;
    this.status(`playing ${this.url}`);
  }

  checkStall() {
    if (!this.player) return;
    const t = this.video.currentTime;
    if (t === this.lastTime && !this.video.paused) {
      this.restarts++;
      this.status(`no new picture for ${STALL_CHECK_MS / 1000} s: reconnecting (${this.restarts})`);
      this.destroyPlayer();
      this.open();
      return;
    }
    this.lastTime = t;
  }

  destroyPlayer() {
    if (!this.player) return;
    try {
      this.player.pause();
      this.player.unload();
      this.player.detachMediaElement();
      this.player.destroy();
    } catch {
      /* already gone */
    }
    this.player = null;
  }

  stop() {
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
    this.destroyPlayer();
    this.url = null;
    this.status('');
  }
}
