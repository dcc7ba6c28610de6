// Effect `watchBus`: tells a worker actor when this node's bus connection is lost and back
// (BUS_DOWN / BUS_UP), read from the bus's own status events. What to make of it is the machine's.
import { fromCallback } from 'xstate';
import type { WatchBusInput, WorkerEvent } from '../machines/index.ts';
import type { Bus, BusConnection } from '../transport/bus.ts';

const eventOf = (c: BusConnection): WorkerEvent => ({ type: c === 'up' ? 'BUS_UP' : 'BUS_DOWN' });

export function watchBusLogic(deps: { bus: Bus }) {
  return fromCallback<WorkerEvent, WatchBusInput>(({ sendBack }) => {
    const { bus } = deps;
    let stopped = false;
    let last: BusConnection = 'up';
    const check = (): void => {
      const now = bus.connection();
      if (stopped || now === last) return;
      last = now;
      sendBack(eventOf(now));
    };
    const events = bus.status()[Symbol.asyncIterator]();
    void (async () => {
      for (;;) {
        const r = await events.next();
        if (r.done || stopped) return;
        if (r.value.type === 'disconnect' || r.value.type === 'reconnect' || r.value.type === 'close') check();
      }
    })().catch(() => undefined);
    // Deferred: an event sent back during the callback's own start would be lost.
    queueMicrotask(check);
    return () => {
      stopped = true;
      void events.return?.();
    };
  });
}
