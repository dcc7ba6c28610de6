// Forked by tests: hosts an embedded bus in this process and serves it to the parent over IPC
// (the channel is symmetric: the parent reaches it with `connectParentBus({ ipc: child })`).
import { bridgeChild, type BridgeEndpoint } from '../../src/transport/local/bridge-parent.ts';
import { LocalBus } from '../../src/transport/local/local-bus.ts';

const bus = new LocalBus();
bridgeChild(bus, process as unknown as BridgeEndpoint);
process.once('disconnect', () => {
  void bus.close().then(() => process.exit(0));
});
process.send?.({ ready: true });
