import { Redis } from 'ioredis';
import { UserError } from '@l2l/core';

/** How long a first connection may take before the URL is reported as unreachable. */
const CONNECT_TIMEOUT_MS = 5000;

/** A Redis URL as the user gave it: redis://host:port[/db] or rediss:// (TLS). */
export function checkRedisUrl(url: string, where = '--redis'): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UserError(`${where}: "${url}" is not a URL (expected redis://host:port)`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new UserError(`${where}: "${url}" is not a redis:// or rediss:// URL`);
  }
  return url;
}

/**
 * A connected client, or a UserError naming the URL when Redis cannot be reached within a few seconds (not a
 * client that retries forever). Later outages are retried (BullMQ's needs: no per-request retry limit).
 */
export async function connectRedis(url: string, name: string): Promise<Redis> {
  checkRedisUrl(url);
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: null,
    connectTimeout: CONNECT_TIMEOUT_MS,
    connectionName: name,
    // The first connection fails fast (below); once up, reconnect with a capped backoff.
    retryStrategy: (times) => Math.min(100 * times, 2000),
  });
  // ioredis reports connection errors as events (ECONNREFUSED, ENOTFOUND): the last one says why connect failed.
  let lastError: Error | undefined;
  client.on('error', (e: Error) => {
    lastError = e;
  });
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer in ${CONNECT_TIMEOUT_MS / 1000} s`)), CONNECT_TIMEOUT_MS).unref()),
    ]);
    await client.ping();
  } catch (e) {
    client.disconnect();
    throw new UserError(`cannot reach Redis at ${url}: ${(lastError ?? (e as Error)).message ?? String(e)}`);
  }
  return client;
}

/** Another connection to the same Redis (BullMQ's, or one for blocking commands), its errors left to retries. */
export function duplicateConnection(client: Redis): Redis {
  const dup = client.duplicate();
  dup.on('error', () => {});
  return dup;
}
