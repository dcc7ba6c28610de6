export { freePort } from '../../src/cli/nats-cluster.ts';
