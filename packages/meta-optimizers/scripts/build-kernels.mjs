// Compiles the fused kernels (assembly/*.ts, AssemblyScript) into wasm/*.wasm:
//   pnpm --filter @l2l/meta-optimizers build:kernels          writes wasm/
//   node scripts/build-kernels.mjs --check                    exits 1 if a committed build differs from its source
//   node scripts/build-kernels.mjs --out DIR                  writes the builds to DIR instead (a variant to compare
//                                                             with bench/dist/kernel-ab.js)
// The .wasm files are committed, so installing and building the workspace needs no compiler run; a test runs
// --check.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { builds, compile, outputPath } from './kernel-builds.mjs';

const check = process.argv.includes('--check');
const outAt = process.argv.indexOf('--out');
const outDir = outAt >= 0 ? process.argv[outAt + 1] : undefined;
if (outAt >= 0 && !outDir) throw new Error('--out needs a directory');
if (outDir) mkdirSync(outDir, { recursive: true });
let stale = 0;
for (const build of builds) {
  const bytes = await compile(build);
  const out = outDir ? path.join(outDir, path.basename(outputPath(build))) : outputPath(build);
  if (check) {
    let committed;
    try {
      committed = readFileSync(out);
    } catch {
      committed = Buffer.alloc(0);
    }
    if (Buffer.compare(bytes, committed) !== 0) {
      stale++;
      console.log(`${out}: differs from what assembly/${build.source}.ts compiles to (run pnpm --filter @l2l/meta-optimizers build:kernels)`);
    } else console.log(`${out}: up to date (${bytes.length} bytes)`);
  } else {
    writeFileSync(out, bytes);
    console.log(`${out}: ${bytes.length} bytes`);
  }
}
process.exitCode = stale ? 1 : 0;
