// `npm run bench [name...]`: runs every bench/*.bench.ts (or the named ones) in this process and
// prints their tables. Each module default-exports { name, run(): Promise<void> } and prints
// markdown tables with medians and ratios against a baseline measured in the same run.
import '../src/polyfill.ts';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

interface Bench {
  name: string;
  run(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .sort();
for (const f of files) {
  const mod = (await import(join(here, f))) as { default: Bench };
  if (wanted.length && !wanted.includes(mod.default.name)) continue;
  console.log(`\n## ${mod.default.name}\n`);
  await mod.default.run();
}
