// The fused kernels' WebAssembly builds: which source, which variant, which compiler flags. Shared by the build
// script (build-kernels.mjs, writes wasm/) and the test that checks the committed .wasm files against their source.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const common = ['-O3', '--runtime', 'stub', '--noAssert', '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536'];

/** Every build: `assembly/<source>.ts` → `wasm/<source>.<variant>.wasm`. */
export const builds = ['lstm-stack', 'multiscale-mlp', 'normalized-history'].flatMap((source) => [
  { source, variant: 'simd', flags: [...common, '--enable', 'simd', '--enable', 'threads'] },
  { source, variant: 'fma', flags: [...common, '--enable', 'simd', '--enable', 'threads', '--enable', 'relaxed-simd'] },
]);

/** Compiles one build with the AssemblyScript compiler's API; resolves to the module's bytes. */
export async function compile(build) {
  const { default: asc } = await import('assemblyscript/asc');
  const input = path.join(packageDir, 'assembly', `${build.source}.ts`);
  let binary;
  const stderr = [];
  const { error } = await asc.main([input, ...build.flags, '--outFile', 'out.wasm'], {
    writeFile: (name, contents) => {
      if (name.endsWith('.wasm')) binary = contents;
    },
    stderr: { write: (s) => stderr.push(String(s)) },
    stdout: { write: () => {} },
  });
  if (error) throw new Error(`asc ${build.source} (${build.variant}): ${error.message}\n${stderr.join('')}`);
  return Buffer.from(binary);
}

export function outputPath(build) {
  return path.join(packageDir, 'wasm', `${build.source}.${build.variant}.wasm`);
}
