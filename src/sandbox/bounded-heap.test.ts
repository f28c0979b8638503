import { describe, expect, it } from 'vitest';
import { BoundedHeap } from './bounded-heap.ts';

describe('BoundedHeap', () => {
  it('keeps the smallest items offered, in order, whatever the order they came in', () => {
    for (let round = 0; round < 50; round++) {
      const values = Array.from({ length: 1 + Math.floor(Math.random() * 300) }, () => Math.floor(Math.random() * 100));
      const capacity = 1 + Math.floor(Math.random() * 40);
      const heap = new BoundedHeap<number>(capacity, (a, b) => a - b);
      for (const value of values) heap.offer(value);
      expect(heap.sorted()).toEqual([...values].sort((a, b) => a - b).slice(0, capacity));
    }
  });
});
