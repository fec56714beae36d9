// Batch signing: the selected documents, one key, one reason; progress per document, cancel,
// and a result for each. Presentation only: the engine signs, two at a time, atomically each.
import { api, type BatchProgress, type DocumentSummary, type UnfinishedBatch } from "./api";
import { h, noticeBox } from "./dom";
import { errorText } from "./errors";
import { t } from "./i18n";
import { signerPicker } from "./tokenpicker";

/** The line under the progress bar: how many are done, and which documents are being signed now
 * (else the one just finished). */
export function batchProgressText(p: BatchProgress, titles: Map<string, string>): string {
  const title = (id: string): string => titles.get(id) ?? id;
  return p.signing.length > 0
    ? t("batch.signingNow", { done: p.done, total: p.total, titles: p.signing.map(title).join(", ") })
    : t("batch.progress", { done: p.done, total: p.total, title: title(p.document) });
}

/** Signs `documents` in a new batch, or — `resume` — finishes an interrupted one under its id and
 * reason (what it signed before is not signed again). */
export async function showBatch(
  container: HTMLElement,
  documents: Pick<DocumentSummary, "id" | "title">[],
  showError: (e: unknown) => void,
  onFinished: () => void,
  resume?: { batchId: string; reason: string },
): Promise<void> {
  const picker = await signerPicker("batch", showError);
  const reason = h("input", { id: "batch-reason", type: "text", value: resume?.reason ?? t("sign.defaultReason"), readOnly: resume !== undefined });
  const start = h("button", { type: "submit", id: "batch-start" }, t("batch.start", { count: documents.length }));
  const cancel = h("button", { type: "button", id: "batch-cancel", disabled: true }, t("batch.cancel"));
  const bar = h("progress", { id: "batch-progress", max: documents.length, value: 0 });
  const current = h("p", { id: "batch-current", class: "muted" });
  const summary = h("p", { id: "batch-summary", role: "status" });
  const titles = new Map(documents.map((d) => [d.id, d.title]));
  const results = h(
    "ul",
    { id: "batch-results", class: "list" },
    ...documents.map((d) => h("li", { "data-doc-id": d.id, "data-result": "pending" }, h("span", { class: "title" }, d.title), h("span", { class: "meta" }, t("batch.pending")))),
  );
  const form = h(
    "form",
    { id: "batch-form", class: "export" },
    picker.element,
    h("label", {}, t("sign.reason"), reason),
    start,
    cancel,
  );
  cancel.addEventListener("click", () => void api.cancelBatch());

  function show(p: BatchProgress): void {
    // Reports of the two workers may arrive out of order: the bar never goes back.
    bar.value = Math.max(bar.value, p.done);
    current.textContent = batchProgressText(p, titles);
    const item = results.querySelector<HTMLElement>(`li[data-doc-id="${CSS.escape(p.document)}"]`);
    if (!item) return;
    item.dataset.result = p.result.result;
    const meta = item.querySelector(".meta");
    if (meta) {
      meta.textContent =
        p.result.result === "failed"
          ? t("batch.failed", { reason: errorText({ code: p.result.code, message: p.result.message }) })
          : t(`batch.${p.result.result}`);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const keyId = picker.vaultKey();
    const token = picker.token();
    if (!keyId && !token) return showError({ code: "signing_error", message: t("sign.noKeys") });
    start.disabled = true;
    cancel.disabled = false;
    const batchId = resume?.batchId ?? `batch-${Date.now()}`;
    try {
      const report = await api.signBatch(
        batchId,
        documents.map((d) => d.id),
        { key_id: keyId ?? "", reason: reason.value.trim(), page: 1, mark: null, certify: null },
        token,
        show,
      );
      summary.textContent = t(report.cancelled ? "batch.summaryCancelled" : "batch.summary", {
        signed: report.signed + report.already_signed,
        total: report.total,
        failed: report.failed.length,
      });
      onFinished();
    } catch (e) {
      showError(e);
    } finally {
      cancel.disabled = true;
      picker.clearPin();
    }
  });

  const heading = resume ? t("batch.resumeHeading", { count: documents.length }) : t("batch.heading", { count: documents.length });
  container.replaceChildren(h("h2", {}, heading), form, bar, current, summary, results);
  if (!picker.vaultKey()) summary.textContent = t("sign.noKeys");
}

/** What the user is told of a batch that stopped before its end. */
export function unfinishedBatchText(batch: UnfinishedBatch): string {
  return t("batch.interrupted", { left: batch.documents_left.length, total: batch.total, reason: batch.reason });
}

/** The batches that stopped before their end, each offered to be finished (`onContinue`) or let
 * go; `refresh` reads them again. */
export function unfinishedBatches(
  onContinue: (batch: UnfinishedBatch) => void,
  showError: (e: unknown) => void,
): { element: HTMLElement; refresh: () => Promise<void> } {
  return noticeBox(
    "unfinished-batches",
    api.unfinishedBatches,
    (batches, refresh) =>
      batches.map((batch) => {
        const go = h("button", { type: "button", class: "batch-continue" }, t("batch.continue"));
        go.addEventListener("click", () => onContinue(batch));
        const drop = h("button", { type: "button", class: "batch-let-go" }, t("batch.letGo"));
        drop.addEventListener("click", () => {
          void api
            .letBatchGo(batch.id)
            .then(refresh)
            .catch(showError);
        });
        return h("p", { "data-batch-id": batch.id }, unfinishedBatchText(batch), " ", go, drop);
      }),
    showError,
  );
}
