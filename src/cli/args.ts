// Flag parsing shared by every subcommand: node:util parseArgs plus `--help`, with the usage
// answers in one place (bad flags: exit 2 with the reason; --help: the usage line, exit 0).
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Writes the usage line (after a reason, when given) to stderr; returns exit code 2. */
export function usageError(command: string, usage: string, reason?: string): number {
  process.stderr.write(`${reason ? `streamfleet ${command}: ${reason}\n` : ''}usage: streamfleet ${usage}\n`);
  return 2;
}

/**
 * Parses a subcommand's argv. A number is the exit code of a command already answered (bad flags,
 * --help); otherwise the parsed values and positionals.
 */
export function parseCommandArgs<const O extends Options>(command: string, usage: string, argv: string[], options: O) {
  const config = { args: argv, allowPositionals: true, strict: true, options: { ...options, help: { type: 'boolean', short: 'h' } } } as const;
  let parsed: ReturnType<typeof parseArgs<typeof config>>;
  try {
    parsed = parseArgs(config);
  } catch (err) {
    return usageError(command, usage, (err as Error).message);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`usage: streamfleet ${usage}\n`);
    return 0;
  }
  return parsed;
}
