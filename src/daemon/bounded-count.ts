// A count of things in flight with a named maximum: whoever admits work asks for a place and
// gives it back; past the maximum the caller is told no and decides what that means.

import { assert } from '../units.js';

export class BoundedCount {
  readonly name: string;
  readonly max: number;
  private current = 0;

  constructor(name: string, max: number) {
    assert(Number.isSafeInteger(max) && max >= 1, `${name} maximum >= 1`);
    this.name = name;
    this.max = max;
  }

  get count(): number {
    return this.current;
  }

  /** Takes a place if one is free. */
  tryEnter(): boolean {
    if (this.current >= this.max) return false;
    this.current++;
    return true;
  }

  /** Gives back a place taken by tryEnter. */
  leave(): void {
    assert(this.current > 0, `${this.name}: a place is given back only after one was taken`);
    this.current--;
  }
}
