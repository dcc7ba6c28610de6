// The `streamfleet` command: a thin root that finds the subcommand module and hands it argv.
// Each subcommand lives in ./commands/<name>.ts and exports `run(argv): Promise<number>` (exit code)
// and `usage` (one line).
import '../polyfill.ts';

export const COMMANDS = ['serve', 'trickle-server', 'publish', 'pull', 'process', 'validate', 'cluster'] as const;
type Command = (typeof COMMANDS)[number];

interface CommandModule {
  run(argv: string[]): Promise<number>;
  usage: string;
}

async function load(name: Command): Promise<CommandModule> {
  return (await import(`./commands/${name}.ts`)) as CommandModule;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const lines = ['usage: streamfleet <command> [options]', ''];
    for (const c of COMMANDS) {
      try {
        lines.push(`  ${(await load(c)).usage}`);
      } catch {
        // a command whose module is missing is simply not listed
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
    return name ? 0 : 2;
  }
  if (!(COMMANDS as readonly string[]).includes(name)) {
    process.stderr.write(`streamfleet: unknown command '${name}' (try --help)\n`);
    return 2;
  }
  return (await load(name as Command)).run(rest);
}
