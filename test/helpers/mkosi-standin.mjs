#!/usr/bin/env node
// test/fixtures/fake-mkosi.mjs (same FAKE_MKOSI_* variables), with two faults of a real mkosi and guest added:
//   STANDIN_IGNORE_TERM=1   mkosi stuck while it shuts QEMU down: SIGTERM does nothing, only SIGKILL ends it.
//   STANDIN_JOURNAL=garbage the virtio-serial journal channel ends up holding binary noise (a corrupted
//                           stream) that systemd-journal-remote turns into a journal without a single entry.
import { writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (process.env.STANDIN_IGNORE_TERM === '1') process.on('SIGTERM', () => {});
if (process.env.STANDIN_JOURNAL === 'garbage') {
  const i = args.findIndex((a, k) => args[k - 1] === '-chardev' && a.startsWith('file,id=itest-journal,'));
  const path = i < 0 ? undefined : /,path=(.*)$/.exec(args[i])?.[1]?.replace(/,,/g, ',');
  const noise = Buffer.alloc(4096, Buffer.from(Array.from({ length: 256 }, (_, b) => b)));
  if (path) process.on('exit', () => writeFileSync(path, noise));
}
await import('../fixtures/fake-mkosi.mjs');
