#!/usr/bin/env node
// test/fixtures/fake-mkosi.mjs (same FAKE_MKOSI_* variables), with two faults of a real mkosi and guest added:
//   STANDIN_IGNORE_TERM=1   mkosi stuck while it shuts QEMU down: SIGTERM does nothing, only SIGKILL ends it.
//   STANDIN_JOURNAL=garbage the virtio-serial journal channel ends up holding binary noise (a corrupted
//                           stream) that systemd-journal-remote turns into a journal without a single entry.
//   STANDIN_LOG=<file>      one line per event, appended (O_APPEND, so that concurrent itest processes can
//                           share it): `build-start|build-end|vm-start|vm-end <pid> <ms since epoch>`.
//   STANDIN_BUILD_MS=<ms>   `build` takes this long and succeeds (the plan is left to the VMs).
import { appendFileSync, writeFileSync } from 'node:fs';

const args = process.argv.slice(2);
const log = (what) =>
  process.env.STANDIN_LOG &&
  appendFileSync(process.env.STANDIN_LOG, `${what} ${process.pid} ${Date.now()}\n`);
if (process.env.STANDIN_BUILD_MS && args.includes('build')) {
  log('build-start');
  await new Promise((r) => setTimeout(r, Number(process.env.STANDIN_BUILD_MS)));
  log('build-end');
  process.exit(0);
}
if (args.includes('vm')) {
  log('vm-start');
  process.on('exit', () => log('vm-end'));
}
if (process.env.STANDIN_IGNORE_TERM === '1') process.on('SIGTERM', () => {});
if (process.env.STANDIN_JOURNAL === 'garbage') {
  const i = args.findIndex((a, k) => args[k - 1] === '-chardev' && a.startsWith('file,id=itest-journal,'));
  const path = i < 0 ? undefined : /,path=(.*)$/.exec(args[i])?.[1]?.replace(/,,/g, ',');
  const noise = Buffer.alloc(4096, Buffer.from(Array.from({ length: 256 }, (_, b) => b)));
  if (path) process.on('exit', () => writeFileSync(path, noise));
}
await import('../fixtures/fake-mkosi.mjs');
