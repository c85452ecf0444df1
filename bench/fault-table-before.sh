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

run() { # $1: bin.js, $2: json file
  L2L_FAULTS_BIN="$1" L2L_FAULTS_TIMEOUT_MS="$timeout_ms" npx jest packages/cli/src/faults.spec.ts --runInBand --json --outputFile="$2" >/dev/null 2>&1 || true
}
echo "fault table against $short (each case a child process, ${timeout_ms} ms at most)..."
run "$old/packages/cli/dist/bin.js" "$out/before.json"
here_commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- packages || echo "+changes")
echo "fault table against this checkout ($here_commit), the same way..."
run "$here/packages/cli/dist/bin.js" "$out/after.json"

node - "$out" "$short" "$here_commit" "$timeout_ms" <<'EOF'
const fs = require('fs');
const [out, before, after, ms] = process.argv.slice(2);
const load = (f) => JSON.parse(fs.readFileSync(`${out}/${f}`, 'utf8'));
// One row per describe block (the fault's name); "the fault table" counts the table itself.
const rows = (r) => r.testResults.flatMap((s) => s.assertionResults).filter((a) => a.ancestorTitles[0] !== 'the fault table')
  .map((a) => ({ name: a.ancestorTitles[0], status: a.status, why: (a.failureMessages[0] ?? '').split('\n').find((l) => l.trim()) ?? '' }));
const b = rows(load('before.json'));
const a = rows(load('after.json'));
const count = (xs, s) => xs.filter((x) => x.status === s).length;
const group = (name) => (/^(validate|train|eval): /.test(name) ? 'config' : name.split(':')[0]);
const groups = [...new Set(b.map((x) => group(x.name)))];
const lines = [
  `# The fault table against ${before} and ${after}`,
  '',
  `\`bench/fault-table-before.sh ${before}\`: ${b.length} cases, each a child process of the commit's built CLI, killed after ${ms} ms.`,
  '',
  `| | ${before} (before the fault work) | ${after} (this checkout) |`,
  '|---|---|---|',
  `| cases failing | ${count(b, 'failed')} | ${count(a, 'failed')} |`,
  `| cases passing | ${count(b, 'passed')} | ${count(a, 'passed')} |`,
  `| of the failures, hangs (no answer within ${ms} ms) | ${b.filter((x) => x.status === 'failed' && /a hang/.test(x.why)).length} | ${a.filter((x) => x.status === 'failed' && /a hang/.test(x.why)).length} |`,
  '',
  '| group | cases | failing before | failing now |',
  '|---|---|---|---|',
  ...groups.map((g) => `| ${g} | ${b.filter((x) => group(x.name) === g).length} | ${b.filter((x) => group(x.name) === g && x.status === 'failed').length} | ${a.filter((x) => group(x.name) === g && x.status === 'failed').length} |`),
  '',
  `Cases passing at ${before} too (the old code already handled them):`,
  '',
  ...b.filter((x) => x.status === 'passed').map((x) => `- ${x.name}`),
  '',
  `Cases failing now (this checkout):`,
  '',
  ...(a.some((x) => x.status === 'failed') ? a.filter((x) => x.status === 'failed').map((x) => `- ${x.name}: ${x.why.trim().slice(0, 200)}`) : ['- none']),
];
fs.writeFileSync(`${out}/summary.md`, lines.join('\n') + '\n');
console.log(lines.slice(0, 14 + groups.length).join('\n'));
EOF
echo "details: $out/summary.md, $out/before.json, $out/after.json"
