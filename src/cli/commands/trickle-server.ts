// `streamfleet trickle-server`: a standalone trickle server (docs/trickle-protocol.md) that runs
// until SIGINT/SIGTERM and then closes cleanly. Prints `listening <url>` on stdout once bound.
import { TrickleConfigSchema, defaultConfig } from '../../config.ts';
import { createLogger } from '../../log.ts';
import { createTrickleServer } from '../../transport/trickle/server.ts';
import { parseCommandArgs, usageError } from '../args.ts';
import { untilSignal } from '../until-signal.ts';

export const usage =
  'trickle-server [--port 3389] [--host 127.0.0.1] [--base-path /] [--no-auto-create]   run a trickle server';

export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('trickle-server', usage, argv, {
    port: { type: 'string', default: String(defaultConfig.http.tricklePort) },
    host: { type: 'string', default: '127.0.0.1' },
    'base-path': { type: 'string', default: '/' },
    'no-auto-create': { type: 'boolean', default: false },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length) return usageError('trickle-server', usage, `unexpected argument '${positionals[0]}'`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`streamfleet trickle-server: bad --port '${values.port}'\n`);
    return 2;
  }
  const config = TrickleConfigSchema.parse({ ...defaultConfig.trickle, autoCreate: !values['no-auto-create'] });
  const logger = createLogger();
  const server = createTrickleServer({ config, basePath: values['base-path'], logger });
  let bound: { port: number };
  try {
    bound = await server.listen(port, values.host);
  } catch (err) {
    process.stderr.write(`streamfleet trickle-server: cannot listen on ${values.host}:${port}: ${(err as Error).message}\n`);
    return 1;
  }
  const host = values.host.includes(':') ? `[${values.host}]` : values.host;
  process.stdout.write(`listening http://${host}:${bound.port}${server.basePath}\n`);
  logger.info({ port: bound.port, host: values.host, basePath: server.basePath, autoCreate: config.autoCreate }, 'trickle server listening');

  await untilSignal();
  logger.info('trickle server closing');
  await server.close();
  return 0;
}
