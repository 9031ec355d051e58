/**
 * One VM budget for all the end-to-end files: npm run test:e2e runs several files at once, and every itest
 * process they start (itest run, the action, meson's itest test, the unprivileged user's run) takes its
 * VMs from the same slot directory (--vm-slots through $ITEST_VM_SLOTS), so that together they never boot
 * more VMs than one run would on this host: two TCG VMs per two CPUs; four at once made each boot three to
 * four times slower. Importing this module sets $ITEST_VM_SLOTS for the file's children.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const VM_SLOTS = process.env.ITEST_VM_SLOTS || join(tmpdir(), 'itest-e2e-vm-slots');
mkdirSync(VM_SLOTS, { recursive: true });
// Sticky and open to all, as /tmp: the unprivileged user's run takes its slots here too.
chmodSync(VM_SLOTS, 0o1777);
process.env.ITEST_VM_SLOTS = VM_SLOTS;
