// The document viewer: continuous pages rendered lazily, a text layer for selecting and copying,
// search hits, the annotation overlay and tools, undo/redo, zoom, and "save a copy".
// Presentation only: the engine converts geometry, stores annotations and renders pages.
import {
  api,
  pageImageUrl,
  type AnnotationKind,
  type DocumentView,
  type PageTextView,
  type Point,
  type TokenChoice,
  type ViewAnnotation,
  type ViewDraft,
} from "./api";
import { h } from "./dom";
import { formatDate, formatPdfDate } from "./format";
import { locale, t, type MessageKey } from "./i18n";
import { signerPicker, type SignerPicker } from "./tokenpicker";
import { signatureVerdict } from "./verdict";
import { clampScale, farFromView, fitWidthScale, rectBetween, selectedText, THUMBNAILS_KEPT_AROUND_VIEW, visibleRange, wordAt } from "./pagegeometry";

type Tool = "select" | "note" | "free_text" | "rectangle" | "ellipse" | "ink";
const TOOLS: Tool[] = ["select", "note", "free_text", "rectangle", "ellipse", "ink"];
const MARKUP: AnnotationKind[] = ["highlight", "underline", "strike_out"];
const SVG = "http://www.w3.org/2000/svg";
/** Width of a page-strip thumbnail, in CSS pixels. */
const THUMBNAIL_WIDTH = 96;

/** The annotation colours offered, by catalogue name; the first is the default. */
const ANNOTATION_COLOURS = [
  ["yellow", "#ffe600"],
  ["green", "#3cb44b"],
  ["blue", "#2d6db3"],
  ["red", "#e6194b"],
  ["black", "#1d2430"],
] as const;

export interface ViewerOptions {
  container: HTMLElement;
  documentId: string;
  startPage: number;
  query: string;
  platform: string;
  showError: (error: unknown) => void;
  /** The server's reason, when it refused a revision of this document (the list's sync state). */
  refused: string | null;
  /** Whether this document's signed revision lost a conflict on the server: sign it again. */
  signAgain?: boolean;
  /** The user settled a revision the server refused (offered it again, or took the server's copy). */
  onRefusalSettled: () => void;
  /** The document was annotated or signed here: the list's badges may have changed. */
  onChanged?: () => void;
}

/** What the sign form asked for: a vault key or a token key, the reason, the certification. */
interface SignRequest {
  keyId: string | null;
  token: TokenChoice | null;
  reason: string;
  certify: number | null;
}

interface Selection {
  page: number;
  first: number;
  last: number;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** Opens the viewer in `container`; returns a function that closes it. */
export async function openViewer(options: ViewerOptions): Promise<() => void> {
  const { container, documentId, platform } = options;
  const view: DocumentView = await api.openDocument(documentId);
  const doc = view.document;
  let tool: Tool = "select";
  let scale = 1;
  let annotations: ViewAnnotation[] = [];
  let selection: Selection | null = null;
  /** Set while the user is to click where the signature mark goes. */
  let placing: SignRequest | null = null;
  /** Bumped when the document gains a revision, so page images are fetched afresh. */
  let revision = 0;
  const texts = new Map<number, PageTextView>();
  const hits = new Map<number, number[]>();
  const visible = new Set<number>();
  const attempts = new Map<number, number>();

  const message = h("p", { id: "viewer-message", class: "muted", role: "status" });
  // A choice of named colours (a select reached and changed by keyboard like any other control;
  // WebKitGTK's colour input is not reached by Tab).
  const colour = h(
    "select",
    { id: "annotation-colour", "aria-label": t("viewer.colour") },
    ...ANNOTATION_COLOURS.map(([name, value]) => h("option", { value }, t(`colour.${name}`))),
  );
  const noteText = h("input", { id: "annotation-text", type: "text", placeholder: t("viewer.textPlaceholder") });
  const toolButtons = TOOLS.map((name) =>
    h("button", { type: "button", class: "tool", "data-tool": name, title: t(`tool.${name}` as MessageKey) }, t(`tool.${name}` as MessageKey)),
  );
  const markupButtons = MARKUP.map((kind) =>
    h("button", { type: "button", id: `markup-${kind}`, disabled: true }, t(`kind.${kind}` as MessageKey)),
  );
  const copyButton = h("button", { type: "button", id: "copy-text", disabled: true }, t("viewer.copy"));
  const undoButton = h("button", { type: "button", id: "undo", title: "Ctrl+Z" }, t("viewer.undo"));
  const redoButton = h("button", { type: "button", id: "redo", title: "Ctrl+Y" }, t("viewer.redo"));
  const zoomLabel = h("span", { id: "zoom-level", class: "muted" });
  const zoomOut = h("button", { type: "button", id: "zoom-out", title: "Ctrl+-" }, "−");
  const zoomIn = h("button", { type: "button", id: "zoom-in", title: "Ctrl++" }, "+");
  const zoomFit = h("button", { type: "button", id: "zoom-fit" }, t("viewer.fitWidth"));
  const exportOpen = h("button", { type: "button", id: "export-open" }, t("viewer.export"));
  const exportPath = h("input", { id: "export-path", type: "text", "aria-label": t("viewer.exportPath") });
  const exportResult = h("p", { id: "export-result", class: "muted" });
  const exportForm = h(
    "form",
    { id: "export-form", class: "export", hidden: true },
    h("label", {}, t("viewer.exportPath"), exportPath),
    h("button", { type: "submit", id: "export-save" }, t("viewer.exportSave")),
    exportResult,
  );
  const signOpen = h("button", { type: "button", id: "sign-open" }, t("sign.open"));
  const signerSlot = h("div", { class: "signer-slot" });
  let picker: SignerPicker | null = null;
  const signReason = h("input", { id: "sign-reason", type: "text", value: t("sign.defaultReason") });
  const signVisible = h("input", { id: "sign-visible", type: "checkbox", checked: true });
  const signCertify = h(
    "select",
    { id: "sign-certify" },
    h("option", { value: "" }, t("sign.certifyNone")),
    h("option", { value: "2" }, t("sign.certifyForms")),
    h("option", { value: "3" }, t("sign.certifyAnnotations")),
  );
  const signForm = h(
    "form",
    { id: "sign-form", class: "export", hidden: true },
    signerSlot,
    h("label", {}, t("sign.reason"), signReason),
    h("label", {}, t("sign.certify"), signCertify),
    h("label", { class: "inline" }, signVisible, t("sign.visible")),
    h("button", { type: "submit", id: "sign-submit" }, t("sign.submit")),
  );
  const signatureList = h("ul", { id: "signature-list", class: "list" });
  const pagesPane = h("div", { id: "pages", class: "pages" });
  const strip = h("nav", { id: "thumbnails", class: "thumbnails", "aria-label": t("viewer.thumbnails") });
  const panelList = h("ul", { id: "annotation-list", class: "list" });
  const panel = h(
    "aside",
    { id: "annotation-panel", class: "annotation-panel" },
    h("h3", {}, t("signatures.heading")),
    signatureList,
    h("h3", {}, t("panel.heading")),
    panelList,
  );

  const frames = view.page_sizes.map(([w, hgt], i) => {
    const page = i + 1;
    const img = h("img", { class: "page", "data-page": page, alt: t("viewer.pageAlt", { page, count: doc.page_count }) });
    const overlay = svg("svg", { class: "overlay", viewBox: `0 0 ${w} ${hgt}`, preserveAspectRatio: "none", "data-page": page });
    const frame = h("div", { class: "page-frame", "data-page": page }, img, overlay);
    img.addEventListener("error", () => {
      // Dropped because it was scrolled past, or failed: ask again when it is seen next.
      img.removeAttribute("src");
      window.setTimeout(() => {
        if (visible.has(page)) requestPage(page);
      }, 250);
    });
    return { page, width: w, height: hgt, frame, img, overlay };
  });

  const thumbnails = view.page_sizes.map(([w, hgt], i) => {
    const page = i + 1;
    const img = h("img", { alt: "", style: `aspect-ratio: ${w} / ${hgt}` });
    const button = h(
      "button",
      { type: "button", class: "thumbnail", "data-page": page, title: t("viewer.pageAlt", { page, count: doc.page_count }) },
      img,
      h("span", {}, String(page)),
    );
    button.addEventListener("click", () => frames[i]?.frame.scrollIntoView({ block: "start" }));
    return { page, img, button };
  });
  // Thumbnails in (or near) the strip's view; those far from it give their images back, so a
  // long document's strip holds a bounded number of decoded images however far it is scrolled.
  const thumbnailsInView = new Set<number>();
  const thumbnailObserver = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        const page = Number((entry.target as HTMLElement).dataset.page);
        if (!entry.isIntersecting) {
          thumbnailsInView.delete(page);
          continue;
        }
        thumbnailsInView.add(page);
        const thumb = thumbnails[page - 1];
        if (thumb && !thumb.img.getAttribute("src")) {
          const pixels = Math.round(THUMBNAIL_WIDTH * window.devicePixelRatio);
          thumb.img.src = `${pageImageUrl(documentId, thumb.page, pixels, platform)}&thumbnail=1&revision=${revision}`;
        }
      }
      const range = visibleRange(thumbnailsInView);
      for (const thumb of thumbnails) {
        if (thumb.img.getAttribute("src") && farFromView(thumb.page, range, THUMBNAILS_KEPT_AROUND_VIEW)) {
          thumb.img.removeAttribute("src");
        }
      }
    },
    { root: strip, rootMargin: "200px 0px" },
  );

  function say(key: MessageKey, params: Record<string, string | number> = {}): void {
    message.textContent = t(key, params);
  }

  function requestPage(page: number): void {
    const f = frames[page - 1];
    if (!f || f.img.getAttribute("src")) return;
    const attempt = (attempts.get(page) ?? 0) + 1;
    attempts.set(page, attempt);
    if (attempt > 5) return;
    const pixels = Math.round(f.width * scale * window.devicePixelRatio);
    f.img.src = `${pageImageUrl(documentId, page, pixels, platform)}&attempt=${attempt}&revision=${revision}`;
  }

  function layout(): void {
    for (const f of frames) {
      f.frame.style.width = `${f.width * scale}px`;
      f.frame.style.height = `${f.height * scale}px`;
      f.img.removeAttribute("src");
      attempts.delete(f.page);
    }
    zoomLabel.textContent = `${Math.round(scale * 100)}%`;
    for (const page of visible) requestPage(page);
  }

  async function textOf(page: number): Promise<PageTextView> {
    const known = texts.get(page);
    if (known) return known;
    const text = await api.pageText(documentId, page);
    texts.set(page, text);
    return text;
  }

  function drawPage(page: number): void {
    const f = frames[page - 1];
    if (!f) return;
    f.overlay.replaceChildren();
    const text = texts.get(page);
    for (const index of hits.get(page) ?? []) {
      const w = text?.words[index];
      if (w) f.overlay.append(svg("rect", { class: "hit", x: w.rect.x, y: w.rect.y, width: w.rect.width, height: w.rect.height }));
    }
    for (const a of annotations.filter((a) => a.page === page)) f.overlay.append(drawAnnotation(a));
    if (selection && selection.page === page && text) {
      const [a, b] = selection.first <= selection.last ? [selection.first, selection.last] : [selection.last, selection.first];
      for (const w of text.words.slice(a, b + 1)) {
        f.overlay.append(svg("rect", { class: "selection", x: w.rect.x, y: w.rect.y, width: w.rect.width, height: w.rect.height }));
      }
    }
  }

  function drawAnnotation(a: ViewAnnotation): SVGGElement {
    const g = svg("g", { class: `annotation kind-${a.kind}`, "data-annotation-id": a.id });
    const stroke = { stroke: a.colour, "stroke-width": a.line_width, fill: "none" };
    for (const r of a.rects) {
      switch (a.kind) {
        case "highlight":
          g.append(svg("rect", { x: r.x, y: r.y, width: r.width, height: r.height, fill: a.colour, "fill-opacity": 0.45 }));
          break;
        case "underline":
          g.append(svg("line", { x1: r.x, y1: r.y + r.height, x2: r.x + r.width, y2: r.y + r.height, ...stroke }));
          break;
        case "strike_out":
          g.append(svg("line", { x1: r.x, y1: r.y + r.height / 2, x2: r.x + r.width, y2: r.y + r.height / 2, ...stroke }));
          break;
        case "note":
          g.append(svg("rect", { x: r.x, y: r.y, width: r.width, height: r.height, fill: a.colour, stroke: "#000", "stroke-width": 1 }));
          break;
        case "ellipse":
          g.append(svg("ellipse", { cx: r.x + r.width / 2, cy: r.y + r.height / 2, rx: r.width / 2, ry: r.height / 2, ...stroke }));
          break;
        case "free_text": {
          g.append(svg("rect", { x: r.x, y: r.y, width: r.width, height: r.height, ...stroke }));
          const label = svg("text", { x: r.x + 4, y: r.y + 14, "font-size": 11 });
          label.textContent = a.contents;
          g.append(label);
          break;
        }
        case "rectangle":
          g.append(svg("rect", { x: r.x, y: r.y, width: r.width, height: r.height, ...stroke }));
          break;
        case "ink":
          break;
      }
    }
    for (const s of a.strokes) {
      g.append(svg("polyline", { points: s.map((p) => `${p.x},${p.y}`).join(" "), "stroke-linecap": "round", "stroke-linejoin": "round", ...stroke }));
    }
    const title = svg("title", {});
    title.textContent = `${a.author}: ${a.contents}`;
    g.append(title);
    return g;
  }

  function drawPanel(): void {
    panelList.replaceChildren(
      ...annotations.map((a) =>
        h(
          "li",
          { "data-annotation-id": a.id, onclick: () => frames[a.page - 1]?.frame.scrollIntoView({ block: "center" }) },
          h("span", { class: "title" }, `${t(`kind.${a.kind}` as MessageKey)} · ${t("search.page", { page: a.page })}`),
          a.contents ? h("span", { class: "snippet" }, a.contents) : null,
          h("span", { class: "meta" }, `${a.author} · ${formatDate(a.modified_ms, locale())}`),
          h("button", {
            type: "button",
            class: "edit-annotation",
            onclick: (event: Event) => {
              event.stopPropagation();
              editContents(a, event.currentTarget as HTMLElement);
            },
          }, t("panel.edit")),
          h("button", {
            type: "button",
            class: "delete-annotation",
            onclick: (event: Event) => {
              event.stopPropagation();
              void change(() => api.deleteAnnotation(a.id, a.revision), "viewer.deleted");
            },
          }, t("panel.delete")),
        ),
      ),
    );
    if (annotations.length === 0) panelList.append(h("li", { class: "muted empty" }, t("panel.empty")));
  }

  /** Replaces an annotation's line in the panel with a field to change its text. */
  function editContents(a: ViewAnnotation, anchor: HTMLElement): void {
    const item = anchor.closest("li");
    if (!item) return;
    const field = h("input", { type: "text", class: "edit-contents", value: a.contents, "aria-label": t("panel.edit") });
    const form = h("form", { class: "edit-form" }, field, h("button", { type: "submit" }, t("panel.save")));
    form.addEventListener("click", (event) => event.stopPropagation());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void change(() => api.editAnnotation(a.id, a.revision, { contents: field.value }), "viewer.edited");
    });
    item.append(form);
    field.focus();
  }

  // A signed revision that lost a conflict: the document here is now the server's version (with the
  // signature that came first); the user's is kept on the server as a conflict branch.
  const conflictSign = h("button", { id: "conflict-sign-again", type: "button" }, t("conflict.signAgain"));
  conflictSign.addEventListener("click", () => {
    if (signForm.hidden) signOpen.click();
  });
  const conflict = h(
    "div",
    { id: "conflict-notice", class: "notice", role: "region", hidden: !options.signAgain },
    h("p", { class: "status-refused" }, t("conflict.title")),
    h("p", { class: "muted" }, t("conflict.explain")),
    conflictSign,
  );

  // A revision the server refused waits for the user: offer it again, or take the server's copy.
  const refusal = h("div", { id: "refused-notice", class: "notice", role: "region", hidden: true });
  async function settle(action: () => Promise<unknown>): Promise<void> {
    try {
      await action();
      options.onRefusalSettled();
    } catch (e) {
      options.showError(e);
    }
  }
  function showRefusal(): void {
    const reason = options.refused;
    if (!reason) {
      refusal.hidden = true;
      return;
    }
    const offer = h("button", { id: "offer-again", type: "button" }, t("refused.offer_again"));
    offer.addEventListener("click", () => void settle(() => api.offerRefusedRevisionAgain(documentId)));
    const take = h("button", { id: "take-server-copy", type: "button" }, t("refused.take_copy"));
    take.addEventListener("click", () => {
      const discard = h("button", { id: "take-server-copy-confirm", type: "button", class: "danger" }, t("refused.discard"));
      discard.addEventListener("click", () => void settle(() => api.takeServerCopy(documentId)));
      const keep = h("button", { type: "button" }, t("refused.keep"));
      keep.addEventListener("click", showRefusal);
      refusal.replaceChildren(h("p", {}, t("refused.confirm")), discard, keep);
      discard.focus();
    });
    refusal.replaceChildren(
      h("p", { class: "status-refused" }, t("docs.refused", { reason })),
      h("p", { class: "muted" }, t("refused.explain")),
      offer,
      take,
    );
    refusal.hidden = false;
  }

  async function reloadSignatures(): Promise<void> {
    const reports = await api.validateDocument(documentId);
    signatureList.replaceChildren(
      ...reports.map((r) => {
        const s = r.status;
        const verdict = signatureVerdict(r);
        const when = (date: string) => formatPdfDate(date, locale());
        const v = r.revocation;
        const revocation =
          v.state === "not_revoked"
            ? t("signatures.revocation.not_revoked", { date: when(v.checked_at) })
            : v.state === "revoked_later"
              ? t("signatures.revocation.revoked_later", { revoked: when(v.revoked_at), proven: when(v.proven_at) })
              : v.state === "revoked"
                ? t("signatures.revocation.revoked", { revoked: when(v.revoked_at) })
                : t("signatures.revocation.unknown");
        const what =
          r.kind === "document_time_stamp"
            ? t("signatures.time_stamp")
            : r.level
              ? `${t("signatures.level", { level: r.level })} — ${t(`signatures.level_hint.${r.level}`)}`
              : "";
        return h(
          "li",
          {
            "data-field": r.field,
            "data-status": s.status,
            "data-kind": r.kind,
            "data-level": r.level ?? "",
            "data-revocation": v.state,
          },
          h("span", { class: `title status-${s.status}` }, verdict),
          h("span", { class: "snippet" }, r.signer ?? ""),
          h("span", { class: "meta" }, what),
          h("span", { class: "meta revocation" }, revocation),
          h("span", { class: "meta" }, `${r.field} · ${r.signing_time ? when(r.signing_time) : ""} · ${r.reason ?? ""}`),
        );
      }),
    );
    if (reports.length === 0) signatureList.append(h("li", { class: "muted empty" }, t("signatures.none")));
  }

  async function sign(
    request: SignRequest,
    page: number,
    mark: { x: number; y: number; width: number; height: number } | null,
  ): Promise<void> {
    try {
      const signOptions = { key_id: request.keyId ?? "", reason: request.reason, page, mark, certify: request.certify };
      const outcome = request.token
        ? await api.signWithToken(documentId, request.token, signOptions)
        : await api.signDocument(documentId, signOptions);
      picker?.clearPin();
      signForm.hidden = true;
      revision = outcome.revision;
      // The document has a new revision: show it afresh (pages, thumbnails, text).
      layout();
      texts.clear();
      for (const thumb of thumbnails) {
        thumb.img.removeAttribute("src");
        thumbnailObserver.unobserve(thumb.button);
        thumbnailObserver.observe(thumb.button);
      }
      await reloadAnnotations();
      await reloadSignatures();
      say("sign.done", { revision: outcome.revision, burned: outcome.burned_annotations });
      // Signed on the server's version: the conflict is answered (the signature goes with the next sync).
      conflict.hidden = true;
      options.onChanged?.();
    } catch (e) {
      options.showError(e);
    }
  }

  signOpen.addEventListener("click", async () => {
    signForm.hidden = !signForm.hidden;
    if (signForm.hidden) return;
    picker = await signerPicker("sign", options.showError);
    signerSlot.replaceChildren(picker.element);
  });
  signForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const keyId = picker?.vaultKey() ?? null;
    const token = picker?.token() ?? null;
    if (!keyId && !token) return say("sign.noKeys");
    const request: SignRequest = {
      keyId,
      token,
      reason: signReason.value.trim(),
      certify: signCertify.value ? Number(signCertify.value) : null,
    };
    if (signVisible.checked) {
      placing = request;
      say("sign.place");
    } else {
      const first = visibleRange(visible)?.[0] ?? 1;
      void sign(request, first, null);
    }
  });

  async function reloadAnnotations(): Promise<void> {
    annotations = await api.listAnnotations(documentId);
    for (const f of frames) drawPage(f.page);
    drawPanel();
  }

  /** Runs an engine change, then shows the new state. */
  async function change(work: () => Promise<unknown>, done: MessageKey): Promise<void> {
    try {
      const result = await work();
      if (typeof result === "string") message.textContent = result;
      else say(done);
      await reloadAnnotations();
      options.onChanged?.();
    } catch (e) {
      options.showError(e);
    }
  }

  function setSelection(next: Selection | null): void {
    const previous = selection?.page;
    selection = next;
    if (previous) drawPage(previous);
    if (next) drawPage(next.page);
    const empty = !selection;
    for (const b of markupButtons) b.disabled = empty;
    copyButton.disabled = empty;
  }

  function create(draft: ViewDraft): Promise<void> {
    return change(() => api.createAnnotation(documentId, draft), "viewer.created");
  }

  function pointIn(f: (typeof frames)[number], event: PointerEvent): Point {
    const box = f.overlay.getBoundingClientRect();
    return { x: ((event.clientX - box.left) / box.width) * f.width, y: ((event.clientY - box.top) / box.height) * f.height };
  }

  for (const f of frames) {
    let start: Point | null = null;
    let stroke: Point[] = [];
    let preview: SVGElement | null = null;
    f.overlay.addEventListener("pointerdown", async (event) => {
      event.preventDefault();
      if (placing) {
        const at = pointIn(f, event);
        const request = placing;
        placing = null;
        // The mark's top-left corner goes where the user clicked, kept inside the page.
        const [w, hgt] = [240, 110];
        const x = Math.max(0, Math.min(at.x, f.width - w));
        const y = Math.max(0, Math.min(at.y, f.height - hgt));
        void sign(request, f.page, { x, y, width: w, height: hgt });
        return;
      }
      f.overlay.setPointerCapture(event.pointerId);
      start = pointIn(f, event);
      stroke = [start];
      if (tool === "select") {
        const at = start;
        try {
          const text = await textOf(f.page);
          const index = wordAt(text.words, at);
          setSelection(index >= 0 ? { page: f.page, first: index, last: index } : null);
        } catch (e) {
          options.showError(e);
        }
      }
    });
    f.overlay.addEventListener("pointermove", (event) => {
      if (!start) return;
      const p = pointIn(f, event);
      if (tool === "select" && selection?.page === f.page) {
        const text = texts.get(f.page);
        const index = text ? wordAt(text.words, p) : -1;
        if (index >= 0 && index !== selection.last) setSelection({ ...selection, last: index });
      } else if (tool === "ink") {
        stroke.push(p);
        preview?.remove();
        preview = svg("polyline", { class: "preview", points: stroke.map((q) => `${q.x},${q.y}`).join(" ") });
        f.overlay.append(preview);
      } else if (tool !== "note") {
        const r = rectBetween(start, p);
        preview?.remove();
        preview = svg("rect", { class: "preview", x: r.x, y: r.y, width: r.width, height: r.height });
        f.overlay.append(preview);
      }
    });
    f.overlay.addEventListener("pointerup", (event) => {
      if (!start) return;
      const end = pointIn(f, event);
      const from = start;
      start = null;
      preview?.remove();
      preview = null;
      const chosen = colour.value;
      const contents = noteText.value.trim();
      switch (tool) {
        case "select":
          return;
        case "note":
          void create({ kind: "note", page: f.page, shape: { shape: "icon", at: end }, colour: chosen, contents });
          return;
        case "ink":
          if (stroke.length > 0) void create({ kind: "ink", page: f.page, shape: { shape: "strokes", strokes: [stroke] }, colour: chosen });
          return;
        default: {
          if (tool === "free_text" && !contents) return say("viewer.needText");
          let rect = rectBetween(from, end);
          if (rect.width < 4 || rect.height < 4) rect = { x: end.x, y: end.y, width: 160, height: 48 };
          void create({ kind: tool, page: f.page, shape: { shape: "box", rect }, colour: chosen, contents });
        }
      }
    });
  }

  for (const [i, kind] of MARKUP.entries()) {
    markupButtons[i]?.addEventListener("click", () => {
      if (!selection) return;
      const s = selection;
      setSelection(null);
      void create({
        kind,
        page: s.page,
        shape: { shape: "words", first: s.first, last: s.last },
        ...(kind === "highlight" ? {} : { colour: colour.value }),
      });
    });
  }
  copyButton.addEventListener("click", () => void copySelection());
  async function copySelection(): Promise<void> {
    if (!selection) return;
    const text = texts.get(selection.page);
    if (!text) return;
    try {
      await navigator.clipboard.writeText(selectedText(text.words, selection.first, selection.last));
      say("viewer.copied");
    } catch (e) {
      options.showError(e);
    }
  }

  function chooseTool(next: Tool): void {
    tool = next;
    for (const b of toolButtons) b.classList.toggle("active", b.dataset.tool === next);
    pagesPane.dataset.tool = next;
    if (next !== "select") setSelection(null);
  }
  for (const b of toolButtons) b.addEventListener("click", () => chooseTool(b.dataset.tool as Tool));

  const undo = () => change(() => api.undoAnnotation(documentId), "viewer.undone");
  const redo = () => change(() => api.redoAnnotation(documentId), "viewer.redone");
  undoButton.addEventListener("click", () => void undo());
  redoButton.addEventListener("click", () => void redo());
  const zoomBy = (factor: number) => {
    scale = clampScale(scale * factor);
    layout();
  };
  zoomIn.addEventListener("click", () => zoomBy(1.25));
  zoomOut.addEventListener("click", () => zoomBy(0.8));
  zoomFit.addEventListener("click", () => {
    scale = fitWidthScale(view.page_sizes, pagesPane.clientWidth - 32);
    layout();
  });

  exportOpen.addEventListener("click", async () => {
    exportForm.hidden = !exportForm.hidden;
    if (!exportForm.hidden && !exportPath.value) exportPath.value = await api.suggestExportPath(documentId);
  });
  exportForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    exportResult.textContent = "";
    try {
      const report = await api.exportDocument(documentId, exportPath.value.trim());
      exportResult.textContent = t("viewer.exported", { count: report.annotations, path: report.path });
    } catch (e) {
      options.showError(e);
    }
  });

  const onKey = (event: KeyboardEvent) => {
    if (!(event.ctrlKey || event.metaKey) || (event.target instanceof HTMLInputElement && event.key !== "z" && event.key !== "y")) return;
    const key = event.key.toLowerCase();
    if (key === "z" && !event.shiftKey) void undo();
    else if (key === "y" || (key === "z" && event.shiftKey)) void redo();
    else if (key === "=" || key === "+") zoomBy(1.25);
    else if (key === "-") zoomBy(0.8);
    else if (key === "c" && selection) void copySelection();
    else return;
    event.preventDefault();
  };
  document.addEventListener("keydown", onKey);

  const observer = new IntersectionObserver(
    (entries) => {
      const appeared: number[] = [];
      for (const entry of entries) {
        const page = Number((entry.target as HTMLElement).dataset.page);
        if (entry.isIntersecting) {
          visible.add(page);
          appeared.push(page);
          if (options.query && !hits.has(page)) void markHits(page);
        } else {
          visible.delete(page);
          // Coming back later is a fresh start: a page dropped while scrolled past is asked again.
          attempts.delete(page);
        }
      }
      const range = visibleRange(visible);
      for (const thumb of thumbnails) thumb.button.classList.toggle("current", range !== null && thumb.page === range[0]);
      // Pages scrolled far away give their images back (WebKit keeps every decoded image an
      // element holds); coming back asks the engine again, whose render cache usually has them.
      for (const f of frames) {
        if (f.img.getAttribute("src") && farFromView(f.page, range)) {
          f.img.removeAttribute("src");
          attempts.delete(f.page);
        }
      }
      // The engine learns what is on screen before the pages are asked for, so it never drops
      // a request for a page that has just come into view.
      const told = range ? api.setVisiblePages(documentId, range[0], range[1]).catch(() => undefined) : Promise.resolve();
      void told.then(() => {
        for (const page of appeared) if (visible.has(page)) requestPage(page);
      });
    },
    { root: pagesPane, rootMargin: "300px 0px" },
  );

  async function markHits(page: number): Promise<void> {
    hits.set(page, []);
    try {
      await textOf(page);
      hits.set(page, await api.findOnPage(documentId, page, options.query));
      drawPage(page);
    } catch (e) {
      options.showError(e);
    }
  }

  container.replaceChildren(
    h("div", { class: "viewer-head" },
      h("h2", { id: "viewer-title" }, doc.title),
      h("p", { class: "muted" }, t("viewer.imported", { date: formatDate(doc.imported_at_ms, locale()), source: doc.source_name })),
    ),
    h("div", { id: "viewer-toolbar", class: "toolbar", role: "toolbar" },
      ...toolButtons, ...markupButtons, copyButton, colour, noteText, undoButton, redoButton, zoomOut, zoomLabel, zoomIn, zoomFit, exportOpen, signOpen,
    ),
    conflict,
    refusal,
    exportForm,
    signForm,
    message,
    h("div", { class: "viewer-body" }, strip, pagesPane, panel),
  );
  pagesPane.replaceChildren(...frames.map((f) => f.frame));
  strip.replaceChildren(...thumbnails.map((thumb) => thumb.button));
  for (const thumb of thumbnails) thumbnailObserver.observe(thumb.button);
  scale = fitWidthScale(view.page_sizes, Math.max(320, pagesPane.clientWidth - 32));
  layout();
  chooseTool("select");
  for (const f of frames) observer.observe(f.frame);
  frames[options.startPage - 1]?.frame.scrollIntoView({ block: "start" });
  await reloadAnnotations();
  await reloadSignatures();
  showRefusal();

  return () => {
    observer.disconnect();
    thumbnailObserver.disconnect();
    document.removeEventListener("keydown", onKey);
    void api.closeDocument(documentId).catch(() => undefined);
  };
}
