// Trickle transport: server, publisher, subscriber (docs/trickle-protocol.md).
export { createTrickleServer } from './server.ts';
export type { TrickleServer, TrickleServerOptions, TrickleServerStats, TrickleServerEvents } from './server.ts';
export { TricklePublisher } from './publisher.ts';
export type { SegmentWriter, TricklePublisherOptions, TricklePublisherStats, TricklePublisherEvents } from './publisher.ts';
export { TrickleSubscriber } from './subscriber.ts';
export type {
  TrickleSegment,
  TrickleSubscriberOptions,
  TrickleSubscriberStats,
  TrickleSubscriberEvents,
  SubscriberEndReason,
} from './subscriber.ts';
export * from './errors.ts';
export * from './protocol.ts';
