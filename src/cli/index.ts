#!/usr/bin/env node
// Entry point of the `itest` binary (bundled to dist/cli/index.js).
import { main } from './main.ts';

process.exit(await main(process.argv));
