import { describe, expect, it } from "vitest";
import type { ViewWord } from "./api";
import { clampScale, farFromView, fitWidthScale, KEPT_AROUND_VIEW, rectBetween, selectedText, THUMBNAILS_KEPT_AROUND_VIEW, visibleRange, wordAt } from "./pagegeometry";

const word = (text: string, line: number, x: number, y: number): ViewWord => ({
  text,
  line,
  rect: { x, y, width: 40, height: 12 },
});
const words = [word("Дата:", 0, 10, 10), word("07.07", 0, 60, 10), word("Approved", 1, 10, 30), word("by", 1, 60, 30)];

describe("page overlay geometry", () => {
  it("finds the word under the pointer, else the nearest on the nearest line", () => {
    expect(wordAt(words, { x: 70, y: 15 })).toBe(1);
    expect(wordAt(words, { x: 200, y: 33 })).toBe(3);
    expect(wordAt(words, { x: 5, y: 28 })).toBe(2);
    expect(wordAt([], { x: 0, y: 0 })).toBe(-1);
  });

  it("copies a selection in either direction with a newline between lines", () => {
    expect(selectedText(words, 3, 1)).toBe("07.07\nApproved by");
    expect(selectedText(words, 0, 0)).toBe("Дата:");
  });

  it("spans rectangles and scales within bounds", () => {
    expect(rectBetween({ x: 50, y: 5 }, { x: 10, y: 25 })).toEqual({ x: 10, y: 5, width: 40, height: 20 });
    expect(fitWidthScale([[595, 842], [842, 595]], 842)).toBe(1);
    expect(clampScale(100)).toBe(4);
    expect(clampScale(0)).toBe(0.25);
  });

  it("reports the visible range of pages", () => {
    expect(visibleRange([5, 3, 4])).toEqual([3, 5]);
    expect(visibleRange([])).toBeNull();
  });
});

describe("pages far from view", () => {
  it("give their images back beyond a few pages either side, and none while nothing is in view", () => {
    const range: [number, number] = [10, 12];
    expect(farFromView(10 - KEPT_AROUND_VIEW, range)).toBe(false);
    expect(farFromView(12 + KEPT_AROUND_VIEW, range)).toBe(false);
    expect(farFromView(10 - KEPT_AROUND_VIEW - 1, range)).toBe(true);
    expect(farFromView(12 + KEPT_AROUND_VIEW + 1, range)).toBe(true);
    expect(farFromView(1, null)).toBe(false);
    // Thumbnails keep more around them, by the same rule.
    expect(farFromView(12 + THUMBNAILS_KEPT_AROUND_VIEW, range, THUMBNAILS_KEPT_AROUND_VIEW)).toBe(false);
    expect(farFromView(12 + THUMBNAILS_KEPT_AROUND_VIEW + 1, range, THUMBNAILS_KEPT_AROUND_VIEW)).toBe(true);
  });
});
