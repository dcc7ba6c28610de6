// Input liveness: every sign of input (a segment's bytes) re-arms a timer; when it fires the
// stream is degraded, and the next sign of input ends that. Each change is reported once.

export class DegradedWatch {
  private timer: NodeJS.Timeout | null = null;
  private state = false;

  constructor(
    private readonly afterMs: number,
    private readonly onChange: (degraded: boolean) => void,
  ) {}

  get degraded(): boolean {
    return this.state;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.state = true;
      this.onChange(true);
    }, this.afterMs);
    this.timer.unref();
  }

  /** Input arrived. */
  touch(): void {
    if (!this.timer) return;
    this.timer.refresh();
    if (this.state) {
      this.state = false;
      this.onChange(false);
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
