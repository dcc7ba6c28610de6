// Minimal types for the `ws` package (it ships none; it comes with @statelyai/inspect via
// isomorphic-ws), covering what the inspection test uses: a server that receives messages.
declare module 'ws' {
  import type { EventEmitter } from 'node:events';

  export interface WebSocket extends EventEmitter {
    on(event: 'message', listener: (data: Buffer | string) => void): this;
    terminate(): void;
  }

  export class WebSocketServer extends EventEmitter {
    constructor(opts: { port: number; host?: string });
    readonly clients: Set<WebSocket>;
    address(): { port: number } | string;
    on(event: 'connection', listener: (socket: WebSocket) => void): this;
    once(event: 'listening', listener: () => void): this;
    close(cb?: () => void): void;
  }
}
