// Bundles every entry point into dist/ with @vercel/ncc (ESM output, Node 24 runtime, licenses alongside).
// CI rebuilds and fails when the committed dist/ differs.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

const entries = [
  ['src/cli/index.ts', 'dist/cli'],
  ['src/action/main-entry.ts', 'dist/action/main'],
  ['src/action/post-entry.ts', 'dist/action/post'],
];

for (const [entry, out] of entries) {
  rmSync(out, { recursive: true, force: true });
  execFileSync(
    'npx',
    ['ncc', 'build', entry, '-o', out, '--target', 'es2022', '--license', 'licenses.txt', '--quiet'],
    {
      stdio: 'inherit',
    },
  );
}
