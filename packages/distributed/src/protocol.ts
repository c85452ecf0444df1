import type { ComponentConfig, ExperimentConfig, JsonObject, RunRequest, TaskConfig } from '@l2l/core';

/*
 * What the learner and its workers say to each other through Redis, next to BullMQ's own keys. One learner
 * session is a run (a random id); an episode is split into shards of consecutive tasks, one BullMQ job each.
 *
 *   <prefix>:run:<run>:info                JSON RunInfo: what a worker rebuilds the run from
 *   <prefix>:run:<run>:alive               set by the learner every few seconds, with a TTL: gone means the learner is
 *   <prefix>:run:<run>:phi:<epoch>:<ep>    hash: unroll u → φ for it (message: φ, meta {length, seed}); "stop" → the
 *                                          episode is over (finished or cut short)
 *   <prefix>:run:<run>:wake:<epoch>:<ep>:<shard>   list: wake-ups for the shard's job when φ or "stop" arrives
 *   <prefix>:run:<run>:res:<epoch>:<ep>:<u>        hash: shard → its estimate (message: mean meta-gradient, meta
 *                                          {metaLosses, losses}); written once (HSETNX), so a replay changes nothing
 *   <prefix>:run:<run>:done:<epoch>:<ep>:<u>       list: shards whose estimate for u is in (the learner's wake-up)
 *   <prefix>:run:<run>:async:phi            asynchronous training: the latest φ (message: φ, meta {version})
 *   <prefix>:run:<run>:async:grads          list of estimates (message: mean meta-gradient, meta AsyncEstimateMeta)
 *   <prefix>:run:<run>:async:wake:<shard>   list: wake-ups of a population job when φ changes or training ends
 *   <prefix>:run:<run>:async:stop           set when the learner is done
 *   <prefix>:run:<run>:opt:<k>             an optimizer evaluation runs rebuild (message: φ of a learned one, meta
 *                                          its spec without φ); a run job names it by k
 */

/** The BullMQ queue workers take episode shards from, unless told otherwise. */
export const DEFAULT_QUEUE = 'l2l';
/** Redis key prefix of BullMQ's keys and ours. */
export const DEFAULT_PREFIX = 'l2l';
/** Seconds the learner's `alive` key lives without a refresh. */
export const ALIVE_TTL_S = 15;
/** Seconds a run's info lives without a heartbeat (longer than `alive`: a late worker still learns what it was). */
export const INFO_TTL_S = 3600;
/** Seconds an episode's keys live after the learner is done with them (a late replay still finds them). */
export const EPISODE_TTL_S = 600;

/** What a worker rebuilds a run from. */
export interface RunInfo extends JsonObject {
  /** The resolved experiment (what a checkpoint stores). */
  experiment: ExperimentConfig & JsonObject;
  /** Directory the learner resolved relative paths and plugins from (workers may be given their own). */
  baseDir: string;
  /** The tfjs backend the learner runs on: workers use the same, so shards compute what the learner would. */
  backend: string;
}

/** One BullMQ job: a shard of an episode. */
export interface ShardJob extends JsonObject {
  run: string;
  prefix: string;
  epoch: number;
  episode: number;
  shard: number;
  /** Tasks [first, end) of the episode's population. */
  first: number;
  end: number;
}

/** One BullMQ job of an evaluation or tuning: one run. */
export interface RunJob extends JsonObject {
  run: string;
  prefix: string;
  /** Which stored optimizer (RunKeys.optimizer). */
  optimizer: number;
  request: RunRequest & JsonObject;
}

/** meta of a stored optimizer: its spec without φ. */
export type StoredSpec = { kind: 'optimizer'; name: string; config: ComponentConfig } | { kind: 'learned'; name: string; metaOptimizer: ComponentConfig };

/** A job's return value: the run's outcome, with the losses' float32 bytes in base64 and numbers as strings. */
export interface OutcomeJson extends JsonObject {
  losses: string;
  metrics: Record<string, string> | null;
  fullLoss: string | null;
}

/** One BullMQ job of asynchronous training: a shard's tasks, trained episode after episode until the learner stops. */
export interface PopulationJob extends JsonObject {
  run: string;
  prefix: string;
  shard: number;
  /** Tasks [first, end) of each of its episodes' populations. */
  first: number;
  end: number;
}

/** meta of an asynchronous estimate: the φ version it was computed at, and what EstimateMeta says. */
export interface AsyncEstimateMeta extends EstimateMeta {
  version: number;
  shard: number;
}

/** meta of a φ message. */
export interface PhiMeta extends JsonObject {
  length: number;
  seed: number;
}

/** meta of an estimate message. */
export interface EstimateMeta extends JsonObject {
  /** Each task's meta-loss over the truncation and optimizee loss after it, in task order (wire.ts's numbersOut). */
  metaLosses: string[];
  losses: string[];
  /** The shard's task configs (what the learner's messages name). */
  configs: TaskConfig[];
}

export const STOP = 'stop';

export class RunKeys {
  constructor(
    readonly prefix: string,
    readonly run: string,
  ) {}

  private get base(): string {
    return `${this.prefix}:run:${this.run}`;
  }
  get info(): string {
    return `${this.base}:info`;
  }
  get alive(): string {
    return `${this.base}:alive`;
  }
  phi(epoch: number, episode: number): string {
    return `${this.base}:phi:${epoch}:${episode}`;
  }
  wake(epoch: number, episode: number, shard: number): string {
    return `${this.base}:wake:${epoch}:${episode}:${shard}`;
  }
  results(epoch: number, episode: number, unroll: number): string {
    return `${this.base}:res:${epoch}:${episode}:${unroll}`;
  }
  done(epoch: number, episode: number, unroll: number): string {
    return `${this.base}:done:${epoch}:${episode}:${unroll}`;
  }
  optimizer(k: number): string {
    return `${this.base}:opt:${k}`;
  }
  get asyncPhi(): string {
    return `${this.base}:async:phi`;
  }
  get asyncGrads(): string {
    return `${this.base}:async:grads`;
  }
  asyncWake(shard: number): string {
    return `${this.base}:async:wake:${shard}`;
  }
  get asyncStop(): string {
    return `${this.base}:async:stop`;
  }
}

/** BullMQ job id of a shard (BullMQ ids may not contain ':'). */
export function shardJobId(run: string, epoch: number, episode: number, shard: number): string {
  return `${run}-${epoch}-${episode}-${shard}`;
}

/** Tasks [first, end) of shard s when n tasks are split into `shards` consecutive, near-equal shards. */
export function shardRange(n: number, shards: number, s: number): [number, number] {
  const base = Math.floor(n / shards);
  const extra = n % shards;
  const first = s * base + Math.min(s, extra);
  return [first, first + base + (s < extra ? 1 : 0)];
}
