// Computes the image key of one config directory in a fresh process (as `itest hash` would) and prints
// {seconds, collectSeconds, files, key} as JSON; bench/config-hash.ts calls it. `--probe parallel` instead
// lstats, reads and digests the same files 32 at a time, `--probe sync` one at a time with the synchronous
// calls: what the walk could cost (where the time goes).
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectConfigInputs } from '../src/image/hash-inputs.ts';
import { imageKey } from '../src/image/config-hash.ts';

const configDir = process.argv[2];
if (!configDir) throw new Error('usage: hash-one.ts CONFIG_DIR [--probe parallel|sync]');

if (process.argv[3] === '--probe' && process.argv[4] === 'sync') {
  const t0 = performance.now();
  for (const f of (await readdir(configDir, { recursive: true })).sort()) {
    const p = join(configDir, f);
    if (lstatSync(p).isFile()) createHash('sha256').update(readFileSync(p)).digest('hex');
  }
  console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000 }));
} else if (process.argv[3] === '--probe') {
  const t0 = performance.now();
  const files = (await readdir(configDir, { recursive: true })).sort();
  let next = 0;
  const lane = async () => {
    while (next < files.length) {
      const p = join(configDir, files[next++]!);
      const st = await lstat(p);
      if (st.isFile())
        createHash('sha256')
          .update(await readFile(p))
          .digest('hex');
    }
  };
  await Promise.all(Array.from({ length: 32 }, lane));
  console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000 }));
} else {
  // computeImageKey (src/engine/image-key.ts) = collectConfigInputs + collectExtraInputs (no globs here) + imageKey.
  const t0 = performance.now();
  const inputs = await collectConfigInputs(configDir);
  const collectSeconds = (performance.now() - t0) / 1000;
  const k = imageKey(inputs, {
    mkosiVersion: '24.3',
    architecture: 'x86_64',
    userKey: '',
    prefix: 'itest-image',
  });
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    JSON.stringify({
      seconds,
      collectSeconds,
      files: k.lines.filter((l) => l.kind === 'file').length,
      key: k.key,
    }),
  );
}
