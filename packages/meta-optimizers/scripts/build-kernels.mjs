// Compiles the fused kernels (assembly/*.ts, AssemblyScript) into wasm/*.wasm: `pnpm --filter @l2l/meta-optimizers build:kernels`.
// The .wasm files are committed, so installing and building the workspace needs no compiler run; a test checks
// that they match their source.
import { writeFileSync } from 'node:fs';
import { builds, compile, outputPath } from './kernel-builds.mjs';

for (const build of builds) {
  const bytes = await compile(build);
  writeFileSync(outputPath(build), bytes);
  console.log(`${outputPath(build)}: ${bytes.length} bytes`);
}
