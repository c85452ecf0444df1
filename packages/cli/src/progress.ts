import { MultiBar, Presets } from 'cli-progress';
import type { CliContext } from './context';

/** A progress display: a bar on a terminal, plain lines otherwise (logs, CI, pipes). */
export interface Progress {
  /** Sets the position (0..total) and the bar's fields. */
  update(value: number, fields?: Record<string, string | number>): void;
  /** A line that stays (an epoch summary, say); printed above the bar on a terminal. */
  line(text: string): void;
  stop(): void;
}

export function createProgress(ctx: CliContext, total: number, format: string, start = 0): Progress {
  if (!ctx.tty) {
    return { update: () => undefined, line: (text) => ctx.out(text), stop: () => undefined };
  }
  // A MultiBar (of one bar) because it can print lines above the bar without garbling it.
  const bars = new MultiBar({ format, hideCursor: true, clearOnComplete: true, etaBuffer: 50, stream: process.stderr }, Presets.shades_classic);
  const bar = bars.create(total, start);
  return {
    update: (value, fields) => bar.update(value, fields),
    line: (text) => bars.log(text + '\n'),
    stop: () => {
      bars.update(); // render once more: log lines are flushed on render
      bars.stop();
    },
  };
}

/** Progress that shows nothing (until a run knows its size). */
export const noProgress: Progress = { update: () => undefined, line: () => undefined, stop: () => undefined };

/** `1h 02m`, `3m 07s`, `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

/** A number for a progress line: 4 significant digits, exponent when tiny or huge. */
export function formatLoss(x: number | undefined): string {
  if (x === undefined) return '—';
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : x.toPrecision(4);
}
