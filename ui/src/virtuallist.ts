// A scrolled list of fixed-height rows that keeps only the rows in view (and a few around them)
// in the page, so thousands of documents scroll as smoothly as ten.
import { h } from "./dom";

/** The rows to draw, [first, end), for a list scrolled to `scrollTop` in a viewport `viewport`
 * pixels high, with `overscan` more rows on each side. */
export function visibleRows(
  scrollTop: number,
  viewport: number,
  rowHeight: number,
  total: number,
  overscan = 8,
): [number, number] {
  if (total <= 0 || rowHeight <= 0) return [0, 0];
  const top = Math.max(0, scrollTop);
  const first = Math.min(total, Math.max(0, Math.floor(top / rowHeight) - overscan));
  const end = Math.min(total, Math.ceil((top + Math.max(viewport, rowHeight)) / rowHeight) + overscan);
  return [first, Math.max(first, end)];
}

/** The scroll position that shows row `index` (unchanged when it is in view already). */
export function scrollFor(index: number, scrollTop: number, viewport: number, rowHeight: number): number {
  const top = index * rowHeight;
  if (top < scrollTop) return top;
  if (top + rowHeight > scrollTop + viewport) return top + rowHeight - viewport;
  return scrollTop;
}

/** The drawn rows (by index) to take out of the page when the rows to draw become `range`,
 * [first, end): those outside it, or all of them when `redraw` (the items' state changed). */
export function rowsToDrop(drawnRows: Iterable<number>, range: [number, number], redraw: boolean): number[] {
  return [...drawnRows].filter((index) => redraw || index < range[0] || index >= range[1]);
}

export interface VirtualList {
  /** The scrolled element to put in the page. */
  element: HTMLElement;
  /** Draws the rows in view again (after the items' state changed). */
  refresh(): void;
}

/** A list of `count` rows of `rowHeight` pixels, each made by `row(index)`; the `ul` gets
 * `listAttrs`. Arrow keys, Home and End move the focus between rows. */
export function virtualList(
  count: number,
  rowHeight: number,
  row: (index: number) => HTMLElement,
  listAttrs: Record<string, string>,
): VirtualList {
  const list = h("ul", { ...listAttrs, class: "list virtual-rows" });
  const spacer = h("div", { class: "virtual-spacer", style: `height: ${count * rowHeight}px` }, list);
  const element = h("div", { class: "virtual-scroll" }, spacer);
  let drawn: [number, number] = [-1, -1];
  // The rows in the page by index: scrolling keeps the ones still in range (the same elements,
  // focus included) and makes only those coming into view, so a scroll frame creates a row or
  // two instead of the whole window (whose discarded nodes the web view would otherwise hold
  // until its next collection).
  const rows = new Map<number, HTMLElement>();
  let pending = false;
  function draw(force: boolean): void {
    const range = visibleRows(element.scrollTop, element.clientHeight, rowHeight, count);
    if (!force && range[0] === drawn[0] && range[1] === drawn[1]) return;
    drawn = range;
    list.style.transform = `translateY(${range[0] * rowHeight}px)`;
    for (const index of rowsToDrop(rows.keys(), range, force)) {
      rows.get(index)?.remove();
      rows.delete(index);
    }
    // Kept rows are contiguous and in order: each new row goes before the next kept one.
    let next = list.firstElementChild;
    for (let i = range[0]; i < range[1]; i += 1) {
      const kept = rows.get(i);
      if (kept) {
        next = kept.nextElementSibling;
        continue;
      }
      const item = row(i);
      item.dataset.index = String(i);
      item.style.height = `${rowHeight}px`;
      rows.set(i, item);
      list.insertBefore(item, next);
    }
  }
  element.addEventListener("scroll", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw(false);
    });
  });
  function focusRow(index: number): void {
    const target = Math.max(0, Math.min(count - 1, index));
    element.scrollTop = scrollFor(target, element.scrollTop, element.clientHeight, rowHeight);
    draw(false);
    list.querySelector<HTMLElement>(`li[data-index="${target}"]`)?.focus();
  }
  list.addEventListener("keydown", (event) => {
    const current = Number((event.target as HTMLElement).closest("li")?.dataset.index ?? -1);
    const page = Math.max(1, Math.floor(element.clientHeight / rowHeight) - 1);
    const moves: Record<string, number> = {
      ArrowDown: current + 1,
      ArrowUp: current - 1,
      PageDown: current + page,
      PageUp: current - page,
      Home: 0,
      End: count - 1,
    };
    if (!(event.key in moves) || current < 0) return;
    event.preventDefault();
    focusRow(moves[event.key] ?? current);
  });
  // The first rows at once (the list is never empty while it is being put in the page), then
  // again when it has its height.
  draw(true);
  requestAnimationFrame(() => draw(false));
  return { element, refresh: () => draw(true) };
}
