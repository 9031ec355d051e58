// Child process for "an engine that crashes takes its VMs along": boots one VM of the stand-in mkosi whose
// guest hangs (a grandchild in a session of its own), then dies of an uncaught exception while the VM runs,
// as a bug in the engine would.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bootVm } from '../../src/run/supervise-vm.ts';
import { FAKE_MKOSI } from './run-tree.ts';

const dir = process.argv[2]!;
void bootVm({
  argv: [FAKE_MKOSI, 'vm'],
  env: {
    ...process.env,
    FAKE_MKOSI_PLAN: 'hang',
    FAKE_MKOSI_STATE: join(dir, 'state'),
    FAKE_MKOSI_CHILD: join(dir, 'child.pid'),
  },
  consoleLog: join(dir, 'console.log'),
  qmpSocket: join(dir, 'qmp'),
  timeoutMs: 60_000,
  interactive: false,
  kvm: false,
  signal: new AbortController().signal,
  // Once the grandchild exists (the stand-in writes its PID), and a moment later so the parent sees it too.
  onStart: () => {
    const poll = setInterval(() => {
      if (!existsSync(join(dir, 'child.pid'))) return;
      clearInterval(poll);
      setTimeout(() => {
        throw new Error('a bug in the engine');
      }, 500);
    }, 50);
  },
});
