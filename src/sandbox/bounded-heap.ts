/**
 * Keeps the `capacity` smallest items offered to it, in memory proportional to the capacity, not to what was
 * offered: a binary max-heap whose top is the largest item kept, replaced whenever a smaller one comes.
 */
export class BoundedHeap<T> {
  private readonly items: T[] = [];

  constructor(
    private readonly capacity: number,
    private readonly compare: (a: T, b: T) => number,
  ) {}

  offer(item: T): void {
    const items = this.items;
    if (items.length < this.capacity) {
      items.push(item);
      this.siftUp(items.length - 1);
    } else if (items.length > 0 && this.compare(item, items[0]!) < 0) {
      items[0] = item;
      this.siftDown(0);
    }
  }

  /** The items kept, smallest first. */
  sorted(): T[] {
    return [...this.items].sort(this.compare);
  }

  private siftUp(index: number): void {
    const items = this.items;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (this.compare(items[index]!, items[parent]!) <= 0) return;
      [items[index], items[parent]] = [items[parent]!, items[index]!];
      index = parent;
    }
  }

  private siftDown(index: number): void {
    const items = this.items;
    for (;;) {
      const left = 2 * index + 1;
      const right = left + 1;
      let largest = index;
      if (left < items.length && this.compare(items[left]!, items[largest]!) > 0) largest = left;
      if (right < items.length && this.compare(items[right]!, items[largest]!) > 0) largest = right;
      if (largest === index) return;
      [items[index], items[largest]] = [items[largest]!, items[index]!];
      index = largest;
    }
  }
}
