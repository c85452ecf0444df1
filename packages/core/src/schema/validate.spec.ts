import { describeSchema, validateWithSchema, checkOptionsSchema } from './validate';

describe('describeSchema', () => {
  it('says in plain words what a schema accepts', () => {
    expect(describeSchema({ type: 'integer', minimum: 1 })).toBe('an integer ≥ 1');
    expect(describeSchema({ type: 'number', exclusiveMinimum: 0, maximum: 1 })).toBe('a number > 0 and ≤ 1');
    expect(describeSchema({ enum: ['relu', 'tanh'] })).toBe('one of "relu", "tanh"');
    expect(describeSchema({ type: 'array', items: { type: 'integer', minimum: 1 } })).toBe('an array of integers ≥ 1');
    expect(describeSchema({ type: 'array', items: { enum: ['a'] } })).toBe('an array of items one of "a"');
    expect(describeSchema({ type: ['number', 'null'] })).toBe('a number or null');
  });
});

describe('validateWithSchema', () => {
  const schema = {
    type: 'object',
    additionalProperties: false,
    properties: {
      hidden: { type: 'array', items: { type: 'integer', minimum: 1 }, default: [20], description: 'Layer sizes.' },
      rate: { type: 'number', exclusiveMinimum: 0, default: 0.1, description: 'Rate.' },
    },
  };

  it('applies defaults to a copy and leaves the input alone', () => {
    const input = { rate: 0.5 };
    const out = validateWithSchema<{ hidden: number[]; rate: number }>(schema, input, 'x.json: optimizee "mlp"');
    expect(out).toEqual({ hidden: [20], rate: 0.5 });
    expect(input).toEqual({ rate: 0.5 });
  });

  it('names the place, the field and the value in each message', () => {
    expect(() => validateWithSchema(schema, { hidden: 'x' }, 'x.json: optimizee "mlp"')).toThrow('x.json: optimizee "mlp": hidden must be an array of integers ≥ 1, got "x"');
    expect(() => validateWithSchema(schema, { hidden: [3, 0] }, 'w')).toThrow('w: hidden[1] must be an integer ≥ 1, got 0');
    expect(() => validateWithSchema(schema, { rate: 0, depth: 2 }, 'w')).toThrow(/unknown field "depth" \(known: hidden, rate\); rate must be a number > 0, got 0|rate must be a number > 0, got 0; unknown field "depth"/);
  });
});

describe('checkOptionsSchema', () => {
  it('rejects open schemas and undescribed options', () => {
    expect(() => checkOptionsSchema({ type: 'object', properties: {} }, 'c')).toThrow('c: options schema must set "additionalProperties": false');
    expect(() => checkOptionsSchema({ type: 'object', additionalProperties: false, properties: { a: { type: 'number' } } }, 'c')).toThrow('c: option "a" has no description');
  });
});
