import { describe, expect, it } from "vitest";
import { rowsToDrop, scrollFor, visibleRows } from "./virtuallist";

describe("the virtual list", () => {
  it("draws only the rows in view and a few around them, whatever the total", () => {
    expect(visibleRows(0, 600, 60, 5000, 8)).toEqual([0, 18]);
    expect(visibleRows(60 * 2500, 600, 60, 5000, 8)).toEqual([2492, 2518]);
    // The end of the list: nothing past the last row.
    expect(visibleRows(60 * 4990, 600, 60, 5000, 8)).toEqual([4982, 5000]);
    expect(visibleRows(0, 600, 60, 3, 8)).toEqual([0, 3]);
    expect(visibleRows(100, 600, 60, 0, 8)).toEqual([0, 0]);
  });

  it("keeps the rows still in view when the list scrolls, and redraws them all when asked", () => {
    // Scrolled down by two rows: the two at the top leave, the rest stay as they are.
    expect(rowsToDrop([10, 11, 12, 13, 14], [12, 17], false)).toEqual([10, 11]);
    // Scrolled up past everything drawn: all of it leaves.
    expect(rowsToDrop([10, 11, 12], [0, 5], false)).toEqual([10, 11, 12]);
    expect(rowsToDrop([10, 11, 12], [10, 13], false)).toEqual([]);
    expect(rowsToDrop([10, 11, 12], [10, 13], true)).toEqual([10, 11, 12]);
  });

  it("scrolls just enough to show a row", () => {
    expect(scrollFor(10, 0, 600, 60)).toBe(60);
    expect(scrollFor(3, 600, 600, 60)).toBe(180);
    expect(scrollFor(12, 600, 600, 60)).toBe(600);
  });
});
