/**
 * Benchmark 4: the image key of a generated config tree of 20,000 files (mkosi.conf + mkosi.extra/ with
 * files of varied sizes), computed in a fresh process each time, against `sha256sum` over the same files
 * (find | xargs). Target: the key in < 1 s. Repetitions alternate; medians.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BENCH_TMP, ROOT, log, median, round, timeCommand, type BenchRow } from './lib.ts';

/** A small deterministic PRNG (mulberry32), so every machine generates the same size distribution. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** 80 % of files 64 B-2 KiB, 18 % 2-32 KiB, 2 % 32-128 KiB; 10 % executable; 20 directories x 10 x files. */
export async function generateTree(dir: string, files: number): Promise<{ bytes: number }> {
  const marker = join(dir, '.complete');
  const rnd = prng(files);
  const sizes = Array.from({ length: files }, () => {
    const r = rnd();
    const span = (lo: number, hi: number) => Math.floor(lo + rnd() * (hi - lo));
    return r < 0.8 ? span(64, 2048) : r < 0.98 ? span(2048, 32768) : span(32768, 131072);
  });
  const bytes = sizes.reduce((a, b) => a + b, 0);
  if (existsSync(marker)) return { bytes };
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'mkosi.conf'),
    '[Distribution]\nDistribution=debian\nRelease=trixie\n\n[Output]\nFormat=disk\n',
  );
  const block = Buffer.alloc(131072);
  for (let i = 0; i < block.length; i++) block[i] = Math.floor(rnd() * 256);
  for (let i = 0; i < files; i++) {
    const sub = join(dir, 'mkosi.extra', 'usr', 'lib', `d${i % 20}`, `s${Math.floor(i / 20) % 10}`);
    if (i < 200) await mkdir(sub, { recursive: true });
    const p = join(sub, `f${i}.conf`);
    // Different content per file: a header with the index, then a slice of the random block.
    const size = sizes[i]!;
    const head = Buffer.from(`# file ${i}\n`);
    await writeFile(
      p,
      Buffer.concat([head, block.subarray(i % 1024, (i % 1024) + Math.max(0, size - head.length))]),
    );
    if (i % 10 === 0) await chmod(p, 0o755);
  }
  await writeFile(marker, '');
  return { bytes };
}

export async function benchConfigHash(opts: { files: number; reps: number }): Promise<BenchRow> {
  const dir = join(BENCH_TMP, `config-tree-${opts.files}`);
  log(`config hash: generating ${opts.files} files in ${dir} (reused when present)`);
  const { bytes } = await generateTree(dir, opts.files);
  const node = ['node', '--import', 'tsx', join(ROOT, 'bench/hash-one.ts'), dir];
  const sha = ['sh', '-c', 'find mkosi.conf mkosi.extra -type f -print0 | xargs -0 sha256sum > /dev/null'];
  // One unmeasured round of each, so that both read from the page cache.
  await timeCommand(node);
  await timeCommand(sha, { cwd: dir });
  const key: number[] = [];
  const collect: number[] = [];
  const proc: number[] = [];
  const sum: number[] = [];
  const parallel: number[] = [];
  const sync: number[] = [];
  let files = 0;
  for (let rep = 0; rep < opts.reps; rep++) {
    const r = await timeCommand(node);
    if (r.code !== 0) throw new Error(`hash-one failed: ${r.stderr}`);
    const j = JSON.parse(r.stdout) as { seconds: number; collectSeconds: number; files: number };
    key.push(j.seconds);
    collect.push(j.collectSeconds);
    proc.push(r.seconds);
    files = j.files;
    sum.push((await timeCommand(sha, { cwd: dir })).seconds);
    const probe = async (kind: string) =>
      (JSON.parse((await timeCommand([...node, '--probe', kind])).stdout) as { seconds: number }).seconds;
    parallel.push(await probe('parallel'));
    sync.push(await probe('sync'));
  }
  const a = median(key);
  const b = median(sum);
  const met = a < 1;
  const notes = [
    `${files} files, ${(bytes / 1024 ** 2).toFixed(0)} MiB, page cache warm; A = computeImageKey's work (collectConfigInputs + imageKey) ` +
      `timed inside a fresh node process (the whole process, with tsx start-up: ${median(proc).toFixed(2)} s); ` +
      `B = find | xargs sha256sum over the same files; ${opts.reps} alternating repetitions, medians`,
    `where the time goes: walking, reading and digesting the files ${median(collect).toFixed(2)} s, sorting and the key digest ` +
      `${(a - median(collect)).toFixed(2)} s. The walk (src/image/hash-inputs.ts describe) uses synchronous ` +
      `lstat and chunked reads (no thread-pool round trips); for comparison, lstatSync + readFileSync take ` +
      `${median(sync).toFixed(2)} s and the fs/promises calls 32 at a time ${median(parallel).toFixed(2)} s ` +
      `(bench/hash-one.ts --probe sync|parallel)`,
  ];
  return {
    id: 'hash',
    benchmark: `4. config hash, ${opts.files} files`,
    a: { label: 'itest key', seconds: round(a) },
    b: { label: 'sha256sum', seconds: round(b) },
    ratio: round(a / b),
    target: 'A < 1 s',
    met,
    notes,
    details: {
      dir,
      files,
      bytes,
      keySeconds: key,
      collectSeconds: collect,
      processSeconds: proc,
      sha256sumSeconds: sum,
      parallelProbeSeconds: parallel,
      syncProbeSeconds: sync,
    },
  };
}
