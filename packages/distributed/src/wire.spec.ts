import * as tf from '@tensorflow/tfjs-core';
import { userErrorMessage } from '@l2l/core/testing';
import { shardRange } from './protocol';
import { decodeMessage, encodeMessage, numbersIn, numbersOut } from './wire';

describe('wire format', () => {
  it('round-trips named tensors (non-finite values included) and a JSON header, without leaking tensors', async () => {
    const before = tf.memory().numTensors;
    const a = tf.tensor([1.5, NaN, -Infinity, 3e-39], [2, 2]);
    const b = tf.tensor([7], [1]);
    const buf = await encodeMessage({ 'lstm0/kernel': a, b }, { length: 20, seed: 12345 });
    const { tensors, meta } = decodeMessage<{ length: number; seed: number }>(buf, 'test');
    expect(meta).toEqual({ length: 20, seed: 12345 });
    expect(tensors['lstm0/kernel']!.shape).toEqual([2, 2]);
    expect(Array.from(tensors['lstm0/kernel']!.dataSync())).toEqual([1.5, NaN, -Infinity, Math.fround(3e-39)]);
    expect(Array.from(tensors.b!.dataSync())).toEqual([7]);
    tf.dispose([a, b, ...Object.values(tensors)]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses truncated and corrupt messages with errors naming them', async () => {
    const a = tf.tensor([1, 2, 3]);
    const buf = await encodeMessage({ a }, null);
    a.dispose();
    const attempt = (b: Buffer) => userErrorMessage(() => decodeMessage(b, 'shard 1'));
    expect(attempt(buf.subarray(0, 2))).toBe('shard 1: a message of 2 bytes is too short');
    expect(attempt(buf.subarray(0, 10))).toMatch(/^shard 1: the header claims \d+ bytes, the message has 6$/);
    expect(attempt(buf.subarray(0, buf.length - 4))).toMatch(/^shard 1 \(data\): expected 12 bytes for the weights in shard 1 \(header\), found 8$/);
    const bad = Buffer.from(buf);
    bad.write('#', 4);
    expect(attempt(bad)).toMatch(/^shard 1: the header is not JSON/);
  });

  it('sends numbers as strings so that NaN and ±Infinity survive and every float comes back exactly', () => {
    const xs = [0.1 + 0.2, -0, NaN, Infinity, -Infinity, 5e-324, 1.7976931348623157e308];
    const back = numbersIn(JSON.parse(JSON.stringify(numbersOut(xs))), 'x');
    // String(-0) is "0": a loss of 0 either way.
    expect(back).toEqual([0.1 + 0.2, 0, NaN, Infinity, -Infinity, 5e-324, 1.7976931348623157e308]);
    expect(() => numbersIn(['1', 'one'], 'shard 0\'s losses')).toThrow("shard 0's losses: expected a list of numbers as strings");
    expect(() => numbersIn([1], 'x')).toThrow('x: expected a list of numbers as strings');
  });

  it('splits n tasks into consecutive shards whose sizes differ by at most one', () => {
    for (const [n, k] of [[1, 1], [4, 2], [5, 2], [7, 3], [10, 10]] as const) {
      const ranges = Array.from({ length: k }, (_, s) => shardRange(n, k, s));
      expect(ranges[0]![0]).toBe(0);
      expect(ranges[k - 1]![1]).toBe(n);
      for (let s = 1; s < k; s++) expect(ranges[s]![0]).toBe(ranges[s - 1]![1]);
      const sizes = ranges.map(([a, b]) => b - a);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      expect(Math.min(...sizes)).toBeGreaterThanOrEqual(1);
    }
    expect(shardRange(5, 2, 0)).toEqual([0, 3]);
    expect(shardRange(5, 2, 1)).toEqual([3, 5]);
  });
});
