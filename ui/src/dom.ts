// A tiny element builder: enough for a few screens without a framework.

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") {
      el.addEventListener(name.replace(/^on/, "").toLowerCase(), value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return el;
}

/** A notice box (`#id`) showing what `load` gives, drawn by `draw` (which is handed `refresh`
 * for its buttons); hidden while there is nothing. `refresh` loads again. */
export function noticeBox<T>(
  id: string,
  load: () => Promise<T[]>,
  draw: (items: T[], refresh: () => Promise<void>) => Node[],
  showError: (e: unknown) => void,
): { element: HTMLElement; refresh: () => Promise<void> } {
  const element = h("div", { id, class: "notice", role: "region", hidden: true });
  const refresh = async (): Promise<void> => {
    let items: T[];
    try {
      items = await load();
    } catch (e) {
      return showError(e);
    }
    element.hidden = items.length === 0;
    element.replaceChildren(...(items.length === 0 ? [] : draw(items, refresh)));
  };
  return { element, refresh };
}
