// The runtime's calls that need the bus (stream records, a stream's inbox on whichever node) while
// the bus is disconnected: refused at once with BUS_UNAVAILABLE, and a call in flight when the
// connection drops is answered the same way then, instead of waiting out its own timeout.
import { SfError } from '../errors.ts';
import { BusError, type Bus } from '../transport/bus.ts';

export interface BusGuard {
  /** Throws BUS_UNAVAILABLE while the bus is down. */
  check(): void;
  /** `call()` unless the bus is down now; rejects with BUS_UNAVAILABLE as soon as it goes down. */
  run<T>(call: () => Promise<T>): Promise<T>;
  close(): void;
}

const unavailable = (cause?: unknown) =>
  new SfError('BUS_UNAVAILABLE', 'The bus is disconnected (reconnecting); running streams go on, try again shortly', {}, { cause });

export function busGuard(bus: Bus): BusGuard {
  const waiting = new Set<() => void>();
  const events = bus.status()[Symbol.asyncIterator]();
  let closed = false;
  void (async () => {
    for (;;) {
      const r = await events.next();
      if (r.done || closed) return;
      if (bus.connection() === 'down') for (const w of [...waiting]) w();
    }
  })().catch(() => undefined);

  const check = (): void => {
    if (bus.connection() === 'down') throw unavailable();
  };
  return {
    check,
    run<T>(call: () => Promise<T>): Promise<T> {
      check();
      return new Promise<T>((resolve, reject) => {
        const down = () => reject(unavailable());
        waiting.add(down);
        call().then(
          (v) => {
            waiting.delete(down);
            resolve(v);
          },
          (err: unknown) => {
            waiting.delete(down);
            // A bus failure that came with the connection's loss says no more than that.
            reject(err instanceof BusError && (err.code === 'BUS_DISCONNECTED' || bus.connection() === 'down') ? unavailable(err) : err);
          },
        );
      });
    },
    close() {
      closed = true;
      waiting.clear();
      void events.return?.();
    },
  };
}
