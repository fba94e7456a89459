import { APPLIED_INDEX, appliedPosition, blockOfPosition, indexOfPosition, positionOf } from '../src';

describe('the position scheme: block * 1,000,000 + index in block', () => {
  test('computes and parses positions', () => {
    expect(positionOf(23_035_025, 7)).toBe(23_035_025_000_007);
    expect(appliedPosition(1_000_000)).toBe(1_000_000_999_999);
    expect(APPLIED_INDEX).toBe(999_999);
    expect(blockOfPosition(23_035_025_000_007)).toBe(23_035_025);
    expect(indexOfPosition(23_035_025_000_007)).toBe(7);
    expect(blockOfPosition(appliedPosition(5))).toBe(5);
    expect(positionOf(5, 0)).toBeGreaterThan(appliedPosition(4));
  });

  test.each([
    [1, -1],
    [1, 1_000_000],
    [1, 0.5],
    [-1, 0],
    [Number.NaN, 0],
    [2 ** 50, 0],
  ])('refuses block %p, index %p', (block, index) => {
    expect(() => positionOf(block, index)).toThrow(expect.objectContaining({ code: 'ERR_BUS_POSITION' }));
  });
});
