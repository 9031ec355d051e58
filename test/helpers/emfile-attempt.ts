// Child process for "an attempt that finds no file descriptor left": runs one attempt of one test (the
// stand-in mkosi, never reached) with every descriptor this process may open in use, as a host running
// too many VMs would, and prints the test's result as JSON. Run it under `prlimit --nofile=N` to keep N small.
import { closeSync, openSync } from 'node:fs';
import { executeTest } from '../../src/run/execute-test.ts';
import { standinContext } from './standin.ts';
import { testSpec, tcgAccelerator } from './spec.ts';

const { ctx } = await standinContext({ plan: 'exit:123', accelerator: tcgAccelerator() });
const held: number[] = [];
try {
  for (;;) held.push(openSync('/dev/null', 'r'));
} catch (e) {
  if ((e as NodeJS.ErrnoException).code !== 'EMFILE') throw e;
}
const result = await executeTest(testSpec(), ctx, 0).catch((e: Error) => ({ threw: e.message }));
for (const fd of held) closeSync(fd);
console.log(JSON.stringify({ held: held.length, result }));
