import { pino, type Logger } from 'pino';

export type { Logger };

/** The root logger; modules take child loggers carrying streamId / workerId. */
export function createLogger(level: string = process.env.SF_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination(2));
}

/** Silent unless SF_LOG_LEVEL asks otherwise; what library code uses when not handed a logger. */
export const rootLogger: Logger = createLogger(process.env.SF_LOG_LEVEL ?? 'silent');
