// Child process for the "process still exits" test: the real @actions/cache and @actions/artifact against
// the parent's stand-in services, each call abandoned at its deadline while the service hangs. The parent
// sets each fault when this prints FAULT=<fault> and answers on stdin. No process.exit at the end: the
// test asserts that nothing the abandoned calls left behind keeps this process alive.
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { GitHubImageCache } from '../../src/action/github/actions-cache.ts';
import { uploadLogs } from '../../src/action/github/upload.ts';

const work = process.argv[2]!;
const t0 = performance.now();
const at = (what: string): void =>
  console.log(`AT ${((performance.now() - t0) / 1000).toFixed(1)} s ${what}`);
process.on('unhandledRejection', (e) => {
  console.log(`UNHANDLED ${String(e)}`);
  process.exitCode = 3;
});
const rl = createInterface({ input: process.stdin });
const acks = rl[Symbol.asyncIterator]();
async function fault(f: string): Promise<void> {
  console.log(`FAULT=${f}`);
  await acks.next();
}
const dir = join(work, 'image');
const warnings: string[] = [];
const cache = new GitHubImageCache(dir, { allowed: true, why: 'push' }, (w) => warnings.push(w), {
  restoreSeconds: 2,
  saveSeconds: 2,
});
await cache.buildDir();
await writeFile(join(dir, 'itest-demo.raw'), 'image');
await fault('none');
await cache.save('itest-image-child', dir);
await fault('blob-hang');
const restored = await cache.restore('itest-image-child');
at('restore ended');
await cache.buildDir();
await writeFile(join(dir, 'itest-demo.raw'), 'image');
await cache.save('itest-image-child-2', dir);
at('save ended');
await writeFile(join(work, 'T.journal'), 'journal');
const up = await uploadLogs({
  name: 'itest-logs-child',
  files: [join(work, 'T.journal')],
  rootDir: work,
  retentionDays: 1,
  timeoutSeconds: 2,
});
at('upload ended');
await fault('none');
rl.close();
for (const w of warnings) console.log(`WARN ${w}`);
const saveWarned = warnings.some((w) => /save gave up/.test(w));
console.log(
  `DONE restore=${restored.hit ? 'hit' : 'miss'} save=${saveWarned ? 'warned' : 'saved'} upload=${up.error}`,
);
