import { decodeWeights, encodeWeights, readable, UserError, type JsonValue, type NamedTensors, type RunOutcome, type WeightsManifest } from '@l2l/core';
import type { OutcomeJson } from './protocol';

/*
 * Named tensors with a JSON header in one Redis value: a 4-byte little-endian header length, the header
 * ({manifest, meta}: core's weights manifest and whatever the message adds), then the tensors' bytes.
 */

/** Async because a backend may read tensors only asynchronously (webgpu): their values are fetched first. */
export async function encodeMessage(tensors: NamedTensors, meta: JsonValue): Promise<Buffer> {
  await readable(...Object.values(tensors));
  const { manifest, data } = encodeWeights(tensors);
  const header = Buffer.from(JSON.stringify({ manifest, meta }), 'utf8');
  const size = Buffer.alloc(4);
  size.writeUInt32LE(header.length, 0);
  return Buffer.concat([size, header, data]);
}

/** Numbers as strings, so NaN and ±Infinity (which JSON lacks) survive; `String` round-trips every float exactly. */
export function numbersOut(xs: readonly number[]): string[] {
  return xs.map(String);
}

/** The inverse of `numbersOut`; anything but such a string is an error naming `where`. */
export function numbersIn(xs: unknown, where: string): number[] {
  if (!Array.isArray(xs) || xs.some((x) => typeof x !== 'string' || (Number.isNaN(Number(x)) && x !== 'NaN'))) {
    throw new UserError(`${where}: expected a list of numbers as strings`);
  }
  return xs.map(Number);
}

/** What `encodeMessage` made: tensors the caller owns (non-finite values pass: the trainer checks them) and meta. */
export function decodeMessage<M extends JsonValue>(buffer: Buffer, where: string): { tensors: NamedTensors; meta: M } {
  if (buffer.length < 4) throw new UserError(`${where}: a message of ${buffer.length} bytes is too short`);
  const size = buffer.readUInt32LE(0);
  if (4 + size > buffer.length) throw new UserError(`${where}: the header claims ${size} bytes, the message has ${buffer.length - 4}`);
  let header: { manifest: WeightsManifest; meta: M };
  try {
    header = JSON.parse(buffer.subarray(4, 4 + size).toString('utf8'));
  } catch (e) {
    throw new UserError(`${where}: the header is not JSON (${(e as Error).message})`);
  }
  const tensors = decodeWeights(header.manifest, buffer.subarray(4 + size), { manifest: `${where} (header)`, data: `${where} (data)` }, { finite: false });
  return { tensors, meta: header.meta };
}

/** A run's outcome as a job's JSON return value (exact: the losses' float32 bytes, numbers as strings). */
export function outcomeOut(r: RunOutcome): OutcomeJson {
  return {
    losses: Buffer.from(r.losses.buffer, r.losses.byteOffset, r.losses.byteLength).toString('base64'),
    metrics: r.metrics ? Object.fromEntries(Object.entries(r.metrics).map(([k, v]) => [k, String(v)])) : null,
    fullLoss: r.fullLoss === undefined ? null : String(r.fullLoss),
  };
}

/** The inverse of `outcomeOut`; errors name `where`. */
export function outcomeIn(json: unknown, where: string): RunOutcome {
  const o = json as OutcomeJson;
  if (!o || typeof o.losses !== 'string') throw new UserError(`${where}: not a run's outcome`);
  const bytes = Buffer.from(o.losses, 'base64');
  if (bytes.length % 4 !== 0) throw new UserError(`${where}: the losses are not float32 values`);
  const losses = new Float32Array(bytes.length / 4);
  new Uint8Array(losses.buffer).set(bytes);
  const metrics = o.metrics ? Object.fromEntries(Object.entries(o.metrics).map(([k, v]) => [k, numbersIn([v], `${where}: metric ${k}`)[0]!])) : undefined;
  return { losses, ...(metrics && { metrics }), ...(o.fullLoss !== null && o.fullLoss !== undefined && { fullLoss: numbersIn([o.fullLoss], `${where}: fullLoss`)[0]! }) };
}

/** The `version` in a message's header, without decoding its tensors (0 when it has none). */
export function decodeVersion(buffer: Buffer): number {
  if (buffer.length < 4) return 0;
  const size = buffer.readUInt32LE(0);
  try {
    const v = JSON.parse(buffer.subarray(4, 4 + size).toString('utf8'))?.meta?.version;
    return typeof v === 'number' ? v : 0;
  } catch {
    return 0;
  }
}
