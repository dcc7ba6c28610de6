#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so `npx streamfleet` needs no build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/polyfill.ts');
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
