/**
 * A/B: this checkout's `pnpm bench` against another built checkout's, interleaved in one run, so that both see the
 * same machine (whose load moves by ±30 % from minute to minute here). One JSON object per line: each
 * measurement as `pnpm bench` prints it (with `side`: "A" the other checkout, "B" this one, and `round`), then one
 * summary per workload with the medians over rounds, the ratios A/B of those medians, and the ratio of each round
 * (A and B back to back) with its median and range: on a machine whose state drifts, the spread of the per-round
 * ratios is the honest figure.
 *
 *     git worktree add /tmp/l2l-base 4bcdc53 && (cd /tmp/l2l-base && pnpm install --offline && pnpm build)
 *     node bench/dist/ab.js --base /tmp/l2l-base --rounds 3 --only Q,M,eval [-- args for both benches]
 *
 * Arguments after `--` go to both sides' bench; `--b-args "..."` adds arguments for this checkout's side only
 * (`--b-args "--workers 2"`, say).
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

interface Line {
  name: string;
  median_s?: number;
  cpu_median_s?: number;
  error?: string;
  [key: string]: unknown;
}

const USAGE = 'usage: node bench/dist/ab.js --base DIR [--rounds N] [--only Q,M,...] [--b-args "..."] [-- args for both]';

function parse(argv: string[]): { base: string; rounds: number; only: string[]; both: string[]; bOnly: string[] } {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const both = dash >= 0 ? argv.slice(dash + 1) : [];
  let base = '';
  let rounds = 3;
  let only = ['Q', 'M'];
  let bOnly: string[] = [];
  for (let i = 0; i < own.length; i++) {
    const v = own[i + 1];
    switch (own[i]) {
      case '--base':
        base = path.resolve(v ?? '');
        i++;
        break;
      case '--rounds':
        rounds = Number(v);
        if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds expects an integer ≥ 1\n${USAGE}`);
        i++;
        break;
      case '--only':
        only = (v ?? '').split(',').filter(Boolean);
        i++;
        break;
      case '--b-args':
        bOnly = (v ?? '').split(' ').filter(Boolean);
        i++;
        break;
      default:
        throw new Error(`unknown argument ${JSON.stringify(own[i])}\n${USAGE}`);
    }
  }
  if (!base) throw new Error(`--base is required\n${USAGE}`);
  return { base, rounds, only, both, bOnly };
}

function runBench(root: string, workload: string, args: string[]): Line {
  const script = path.join(root, 'bench', 'dist', 'run.js');
  try {
    const out = execFileSync(process.execPath, [script, '--only', workload, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
    const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
    return line ? (JSON.parse(line) as Line) : { name: workload, error: 'no output' };
  } catch (e) {
    return { name: workload, error: (e as Error).message.split('\n')[0]! };
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number) => Number(x.toPrecision(4));

function main(): void {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(process.argv.slice(2));
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
  const self = path.resolve(__dirname, '..', '..');
  const seen: Record<string, { A: Line[]; B: Line[] }> = {};
  for (let r = 0; r < args.rounds; r++) {
    for (const w of args.only) {
      seen[w] ??= { A: [], B: [] };
      // Alternate which side goes first, so neither always runs on the warmer (or busier) machine.
      const order: Array<'A' | 'B'> = r % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
      for (const side of order) {
        const line = side === 'A' ? runBench(args.base, w, args.both) : runBench(self, w, [...args.both, ...args.bOnly]);
        seen[w]![side].push(line);
        console.log(JSON.stringify({ side, round: r + 1, ...line }));
      }
    }
  }
  for (const [w, { A, B }] of Object.entries(seen)) {
    const ok = (xs: Line[]) => xs.filter((x) => !x.error && x.median_s !== undefined);
    const a = ok(A);
    const b = ok(B);
    if (!a.length || !b.length) {
      console.log(JSON.stringify({ summary: w, error: 'a side failed every round', A: A.map((x) => x.error), B: B.map((x) => x.error) }));
      continue;
    }
    const rounds = A.flatMap((x, r) => (ok([x]).length && B[r] && ok([B[r]!]).length ? [[x, B[r]!] as const] : []));
    const wall = rounds.map(([x, y]) => x.median_s! / y.median_s!);
    const cpu = rounds.map(([x, y]) => x.cpu_median_s! / y.cpu_median_s!);
    const wallA = median(a.map((x) => x.median_s!));
    const wallB = median(b.map((x) => x.median_s!));
    const cpuA = median(a.map((x) => x.cpu_median_s!));
    const cpuB = median(b.map((x) => x.cpu_median_s!));
    console.log(
      JSON.stringify({
        summary: w,
        what: 'medians over rounds of each round\'s median; ratio = A / B (how many times faster B is)',
        A: { commit: a[0]!.commit, wall_s: round(wallA), cpu_s: round(cpuA), peak_rss_mb: median(a.map((x) => Number(x.peak_rss_mb))) },
        B: { commit: b[0]!.commit, wall_s: round(wallB), cpu_s: round(cpuB), peak_rss_mb: median(b.map((x) => Number(x.peak_rss_mb))), path: b[0]!.path },
        wall_ratio: round(wallA / wallB),
        cpu_ratio: round(cpuA / cpuB),
        round_ratios: wall.length
          ? { wall: wall.map(round), wall_median: round(median(wall)), wall_min: round(Math.min(...wall)), wall_max: round(Math.max(...wall)), cpu_median: round(median(cpu)) }
          : null,
        rounds: args.rounds,
      }),
    );
  }
}

main();
