// Pure helpers for the page overlay: hit-testing words and scaling view space (points) to pixels.
// Geometry in PDF terms is the engine's; these only deal with what is on screen.
import type { Point, ViewRect, ViewWord } from "./api";

/** The index of the word at `p`, else the nearest word on the nearest line; -1 with no words. */
export function wordAt(words: ViewWord[], p: Point): number {
  let best = -1;
  let bestDistance = Number.POSITIVE_INFINITY;
  words.forEach((w, i) => {
    const dx = Math.max(w.rect.x - p.x, 0, p.x - (w.rect.x + w.rect.width));
    const dy = Math.max(w.rect.y - p.y, 0, p.y - (w.rect.y + w.rect.height));
    // Being on the right line matters more than being near the right word.
    const distance = dy * 4 + dx;
    if (distance < bestDistance) {
      bestDistance = distance;
      best = i;
    }
  });
  return best;
}

/** The words `first..=last` (either order) joined as "copy" would: spaces, and newlines between lines. */
export function selectedText(words: ViewWord[], first: number, last: number): string {
  const [a, b] = first <= last ? [first, last] : [last, first];
  let text = "";
  let line: number | null = null;
  for (const w of words.slice(Math.max(a, 0), b + 1)) {
    if (line !== null) text += line === w.line ? " " : "\n";
    text += w.text;
    line = w.line;
  }
  return text;
}

/** The rectangle between two points, in either order. */
export function rectBetween(a: Point, b: Point): ViewRect {
  return {
    x: Math.min(a.x, b.x),
    y: Math.min(a.y, b.y),
    width: Math.abs(a.x - b.x),
    height: Math.abs(a.y - b.y),
  };
}

/** Zoom bounds, as pixels per point. */
export const MIN_SCALE = 0.25;
export const MAX_SCALE = 4;

/** The scale that fits the widest page into `available` pixels. */
export function fitWidthScale(pageSizes: [number, number][], available: number): number {
  const widest = Math.max(1, ...pageSizes.map(([w]) => w));
  return clampScale(available / widest);
}

export function clampScale(scale: number): number {
  return Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
}

/** The first and last page (1-based) among those reported visible, or null. */
export function visibleRange(visible: Iterable<number>): [number, number] | null {
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  for (const page of visible) {
    first = Math.min(first, page);
    last = Math.max(last, page);
  }
  return last === 0 ? null : [first, last];
}

/** Pages kept drawn on each side of those in view; farther ones give their images back. */
export const KEPT_AROUND_VIEW = 3;

/** Thumbnails kept drawn on each side of those in the strip's view (they are small). */
export const THUMBNAILS_KEPT_AROUND_VIEW = 24;

/**
 * Whether `page` is far enough from the pages in view (`range`) to let go of its image: more than
 * `kept` pages away on either side.
 */
export function farFromView(page: number, range: [number, number] | null, kept: number = KEPT_AROUND_VIEW): boolean {
  if (range === null) return false;
  return page < range[0] - kept || page > range[1] + kept;
}
