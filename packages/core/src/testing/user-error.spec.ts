import { UserError } from '../errors';
import { ContractError } from './util';
import { userErrorMessage } from './user-error';

describe('userErrorMessage', () => {
  it('gives the message of a UserError thrown or rejected with', async () => {
    expect(userErrorMessage(() => {
      throw new UserError('x.json: training.unroll must be ≥ 1, got 0');
    })).toBe('x.json: training.unroll must be ≥ 1, got 0');
    await expect(userErrorMessage(async () => {
      throw new UserError('late');
    })).resolves.toBe('late');
    // Errors that crossed a worker boundary keep only their name.
    const copied = Object.assign(new Error('from a worker'), { name: 'UserError' });
    expect(userErrorMessage(() => {
      throw copied;
    })).toBe('from a worker');
  });

  it('fails with a ContractError when nothing is thrown or the error is not a UserError', async () => {
    expect(() => userErrorMessage(() => 1)).toThrow(new ContractError('userErrorMessage: expected a UserError, but nothing was thrown'));
    expect(() => userErrorMessage(() => {
      throw new TypeError('x is undefined');
    })).toThrow('userErrorMessage: expected a UserError (one line for the user), got TypeError: x is undefined');
    await expect(userErrorMessage(async () => 1)).rejects.toThrow('nothing was thrown');
    await expect(userErrorMessage(() => Promise.reject(new RangeError('bad')))).rejects.toThrow('got RangeError: bad');
    await expect(userErrorMessage(() => Promise.reject(new RangeError('bad')))).rejects.toBeInstanceOf(ContractError);
  });
});
