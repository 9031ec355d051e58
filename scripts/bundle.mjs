// Bundles every entry point into dist/ with @vercel/ncc (ESM output, Node 24 runtime, licenses alongside).
// CI rebuilds and fails when the committed dist/ differs. The three bundles are independent: built at
// once (each ncc is one mostly single-threaded process), about half the time of one after the other.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';

const entries = [
  ['src/cli/index.ts', 'dist/cli'],
  ['src/action/main-entry.ts', 'dist/action/main'],
  ['src/action/post-entry.ts', 'dist/action/post'],
];

const bundle = ([entry, out]) =>
  new Promise((resolve, reject) => {
    rmSync(out, { recursive: true, force: true });
    const child = spawn(
      'npx',
      ['ncc', 'build', entry, '-o', out, '--target', 'es2022', '--license', 'licenses.txt', '--quiet'],
      { stdio: 'inherit' },
    );
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`ncc build ${entry}: ${signal ?? `exit ${code}`}`)),
    );
  });

const results = await Promise.allSettled(entries.map(bundle));
const failed = results.filter((r) => r.status === 'rejected');
for (const f of failed) console.error(f.reason.message);
if (failed.length > 0) process.exit(1);
