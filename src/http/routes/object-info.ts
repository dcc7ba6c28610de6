// ComfyUI's node catalogue, so ComfyUI front ends can list the nodes streamfleet runs.
import type { FastifyPluginAsync } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SfError } from '../../errors.ts';
import { objectInfo, objectInfoFor } from '../../inference/object-info.ts';
import { createRegistry } from '../../inference/registry.ts';

export const objectInfoRoutes: FastifyPluginAsync<{ workspace: string; testNodes?: boolean }> = async (base, { workspace, testNodes }) => {
  const app = base.withTypeProvider<ZodTypeProvider>();
  // The registry is read per request: OnnxModel's model list follows the files in the workspace.
  app.get('/object_info', { schema: { tags: ['nodes'] } }, async () => objectInfo(createRegistry(workspace, { testNodes })));
  app.get(
    '/object_info/:class',
    { schema: { tags: ['nodes'], params: z.object({ class: z.string().min(1).max(128) }) } },
    async (req) => {
      const info = objectInfoFor(createRegistry(workspace, { testNodes }), req.params.class);
      if (!Object.keys(info).length) throw new SfError('NOT_FOUND', `Node class ${req.params.class} not found`);
      return info;
    },
  );
};
