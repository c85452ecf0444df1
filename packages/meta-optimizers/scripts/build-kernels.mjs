// Compiles the fused kernels (assembly/*.ts, AssemblyScript) into wasm/*.wasm:
//   pnpm --filter @l2l/meta-optimizers build:kernels          writes wasm/
//   node scripts/build-kernels.mjs --check                    exits 1 if a committed build differs from its source
// The .wasm files are committed, so installing and building the workspace needs no compiler run; a test runs
// --check.
import { readFileSync, writeFileSync } from 'node:fs';
import { builds, compile, outputPath } from './kernel-builds.mjs';

const check = process.argv.includes('--check');
let stale = 0;
for (const build of builds) {
  const bytes = await compile(build);
  const out = outputPath(build);
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
