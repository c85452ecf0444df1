#!/usr/bin/env bash
# Today's fault table (packages/cli/src/faults.spec.ts) against an older commit's CLI: shows which faults the table
# catches there and that they pass here. Each case runs as a child process of a built bin.js (L2L_FAULTS_BIN), killed
# after L2L_FAULTS_TIMEOUT_MS (the old code has hangs that block the event loop, so the in-process timeout cannot
# fire), once with the old commit's binary and once with this checkout's. The table's own code, fixtures and checks
# are this checkout's in both runs; only the CLI under test changes. The in-process tensor-leak check sees nothing
# in this mode.
#
# Usage: bench/fault-table-before.sh [COMMIT] [OUT_DIR]
#   COMMIT   default: the parent of the first commit of the fault work (the first to touch packages/cli/src/output.ts)
#   OUT_DIR  default: /tmp/l2l-fault-table-before; gets before.json, after.json (jest --json) and summary.md
#   L2L_FAULTS_REUSE=1 keeps the json files of an earlier run and only writes the summary again.
# Needs this checkout built (pnpm build). Takes ~20-40 min on 2 shared cores (about 340 cases, twice).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
commit=${1:-$(git rev-parse "$(git log --reverse --format=%H -- packages/cli/src/output.ts | head -1)^")}
out=${2:-/tmp/l2l-fault-table-before}
timeout_ms=${L2L_FAULTS_TIMEOUT_MS:-40000}
short=$(git rev-parse --short "$commit")
old="$out/l2l-$short"
mkdir -p "$out"

if [ ! -f "$old/packages/cli/dist/bin.js" ]; then
  echo "checking out $short into $old and building it..."
  rm -rf "$old"
  mkdir -p "$old"
  git archive "$commit" | tar -x -C "$old"
  (cd "$old" && (pnpm install --frozen-lockfile --offline >/dev/null 2>&1 || pnpm install --frozen-lockfile >/dev/null) && pnpm build >/dev/null)
fi
[ -f packages/cli/dist/bin.js ] || { echo "build this checkout first (pnpm build)" >&2; exit 1; }

run() { # $1: bin.js, $2: json file (kept, not rerun, with L2L_FAULTS_REUSE=1)
  if [ "${L2L_FAULTS_REUSE:-}" = 1 ] && [ -f "$2" ]; then return; fi
  L2L_FAULTS_BIN="$1" L2L_FAULTS_TIMEOUT_MS="$timeout_ms" npx jest packages/cli/src/faults.spec.ts --runInBand --json --outputFile="$2" >/dev/null 2>&1 || true
}
echo "fault table against $short (each case a child process, ${timeout_ms} ms at most)..."
run "$old/packages/cli/dist/bin.js" "$out/before.json"
if [ "${L2L_FAULTS_REUSE:-}" != 1 ] || [ ! -f "$out/after.json" ]; then
  git rev-parse --short HEAD > "$out/after.commit"
  git diff --quiet HEAD -- packages || echo "(with uncommitted changes under packages/)" >> "$out/after.commit"
fi
here_commit=$(head -1 "$out/after.commit")
echo "fault table against this checkout ($(tr '\n' ' ' < "$out/after.commit")), the same way..."
run "$here/packages/cli/dist/bin.js" "$out/after.json"

node - "$out" "$short" "$here_commit" "$timeout_ms" <<'EOF'
const fs = require('fs');
const [out, before, after, ms] = process.argv.slice(2);
const load = (f) => JSON.parse(fs.readFileSync(`${out}/${f}`, 'utf8'));
// One case per describe block (the fault's name); "the fault table" checks the table itself.
const rows = (r) => r.testResults.flatMap((s) => s.assertionResults).filter((a) => a.ancestorTitles[0] !== 'the fault table')
  .map((a) => ({ name: a.ancestorTitles[0], status: a.status, why: (a.failureMessages[0] ?? '').split('\n').find((l) => l.trim()) ?? '' }));
const group = (n) =>
  /^(validate|train|eval): |^validate lists|^a config (file|that)/.test(n) ? 'bad configs and oversized problems'
  : /^command line: /.test(n) ? 'command lines'
  : /^lock: /.test(n) ? 'locks on a run directory'
  : /^plugin: /.test(n) ? 'plugins'
  : /^data: /.test(n) ? 'IDX data'
  : /^(train --resume|eval --optimizer)|^a run killed|^stale temporaries|^a snapshot interrupted/.test(n) ? 'checkpoints'
  : 'output locations';
const b = rows(load('before.json'));
const a = rows(load('after.json'));
const failed = (xs, g) => xs.filter((x) => x.status === 'failed' && (!g || group(x.name) === g));
const hangs = (xs) => xs.filter((x) => x.status === 'failed' && /a hang/.test(x.why));
const groups = [...new Set(b.map((x) => group(x.name)))];
const lines = [
  `\`bench/fault-table-before.sh ${before}\`: ${b.length} cases, each a child process of the commit's built CLI, killed after ${ms} ms.`,
  '',
  `| | ${before} (before the fault work) | ${after} (this checkout) |`,
  '|---|---|---|',
  `| cases failing | ${failed(b).length} | ${failed(a).length} |`,
  `| cases passing | ${b.length - failed(b).length} | ${a.length - failed(a).length} |`,
  `| of the failures, hangs (no answer within ${ms / 1000} s) | ${hangs(b).length} | ${hangs(a).length} |`,
  '',
  `| group | cases | failing at ${before} | failing at ${after} |`,
  '|---|---|---|---|',
  ...groups.map((g) => `| ${g} | ${b.filter((x) => group(x.name) === g).length} | ${failed(b, g).length} | ${failed(a, g).length} |`),
  '',
  `Hangs at ${before}: ${hangs(b).map((x) => x.name).join('; ') || 'none'}.`,
  '',
  `Failing at ${after}: ${failed(a).map((x) => `${x.name} (${x.why.trim().slice(0, 160)})`).join('; ') || 'none'}.`,
  '',
  `Passing at ${before} too (the old code already handled them): ${b.filter((x) => x.status === 'passed').length} cases (per group, cases minus those failing), each listed in summary.md.`,
];
const details = [...lines, '', ...b.filter((x) => x.status === 'passed').map((x) => `- passing at ${before}: ${x.name}`)];
fs.writeFileSync(`${out}/summary.md`, details.join('\n') + '\n');
console.log(lines.join('\n'));
EOF
echo "details: $out/summary.md, $out/before.json, $out/after.json"
