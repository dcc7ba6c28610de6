// The cluster's nodes: GET /nodes (from the cluster view, no round trip) and POST /node/{id}/drain
// (the node hands its streams to the others, then leaves). Any node answers for every node.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { NodeView } from '../../actors/cluster-view.ts';
import type { StreamRuntime } from '../../actors/types.ts';
import { ErrorBody } from '../schemas.ts';

export interface NodeRoutesOptions {
  runtime: StreamRuntime;
}

const NodesResponse = z.object({ node_id: z.string(), nodes: z.array(NodeView), count: z.number().int() });
const DrainResponse = z.object({ status: z.literal('draining'), node_id: z.string(), streams: z.number().int() });
const NodeParams = z.object({ id: z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/u, 'a node id: letters, digits, - and _') });

export const nodeRoutes: FastifyPluginAsync<NodeRoutesOptions> = async (base, { runtime }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  app.get('/nodes', { schema: { tags: ['nodes'], response: { 200: NodesResponse } } }, async () => {
    const nodes = runtime.nodes();
    return { node_id: runtime.nodeId, nodes, count: nodes.length };
  });
  app.post(
    '/node/:id/drain',
    { schema: { tags: ['nodes'], params: NodeParams, response: { 202: DrainResponse, 400: ErrorBody, 401: ErrorBody, 404: ErrorBody, 503: ErrorBody } } },
    async (req, reply) => {
      const r = await runtime.drainNode(req.params.id);
      return reply.code(202).send({ status: 'draining' as const, node_id: req.params.id, streams: r.streams });
    },
  );
};
