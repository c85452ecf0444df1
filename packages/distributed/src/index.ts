export { RedisPopulationSource, type LearnerOptions } from './learner';
export { startWorker, type DistributedWorker, type RunEvent, type ShardEvent, type WorkerOptions } from './worker';
export { RedisRunSource } from './run-source';
export { AsyncPopulationSource, type AsyncLearnerOptions, type AsyncStats } from './async-learner';
export type { SessionOptions } from './session';
export { checkRedisUrl, connectRedis } from './redis';
export { DEFAULT_PREFIX, DEFAULT_QUEUE, shardRange, type RunInfo, type ShardJob } from './protocol';
export { decodeMessage, encodeMessage } from './wire';
export { startLocalRedis, type LocalRedis } from './local-redis';
