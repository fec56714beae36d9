// How the document list is shown: in which order, and which documents. Pure presentation over
// what the engine reports (marks and sync states); nothing here changes a document.
import type { DocumentMarks, DocumentSummary, DocumentSyncState } from "./api";

/** The orders the list offers. */
export const SORTS = ["newest", "oldest", "title", "size"] as const;
export type Sort = (typeof SORTS)[number];

/** The filters the list offers (by the badges a row shows). */
export const FILTERS = ["all", "new", "awaiting", "signed", "annotated", "synced", "pending", "resign", "refused"] as const;
export type Filter = (typeof FILTERS)[number];

/** What the list knows of each document besides its summary. */
export interface ListFacts {
  marks: Map<string, DocumentMarks>;
  syncStates: Map<string, DocumentSyncState>;
}

/** Whether `doc` passes `filter`. */
export function passes(doc: DocumentSummary, filter: Filter, facts: ListFacts): boolean {
  const m = facts.marks.get(doc.id);
  const s = facts.syncStates.get(doc.id);
  switch (filter) {
    case "all":
      return true;
    case "new":
      return !m?.opened;
    case "awaiting":
      return m?.awaiting_signature === true;
    case "signed":
      return m?.signed === true;
    case "annotated":
      return (m?.annotations ?? 0) > 0;
    case "synced":
      return s?.standing === "synced";
    case "pending":
      return (s?.pending_revisions ?? 0) + (s?.pending_annotations ?? 0) > 0;
    case "resign":
      return s?.sign_again === true;
    case "refused":
      return s?.refused != null;
  }
}

/** The documents that pass `filter`, in `sort` order (ties keep the newest first). */
export function arrange(documents: DocumentSummary[], sort: Sort, filter: Filter, facts: ListFacts): DocumentSummary[] {
  const newestFirst = (a: DocumentSummary, b: DocumentSummary) => b.imported_at_ms - a.imported_at_ms || a.id.localeCompare(b.id);
  const order: Record<Sort, (a: DocumentSummary, b: DocumentSummary) => number> = {
    newest: newestFirst,
    oldest: (a, b) => -newestFirst(a, b),
    title: (a, b) => collator.compare(a.title, b.title) || newestFirst(a, b),
    size: (a, b) => b.byte_size - a.byte_size || newestFirst(a, b),
  };
  return documents.filter((doc) => passes(doc, filter, facts)).sort(order[sort]);
}

// Russian and English titles side by side: numbers in order ("№ 2" before "№ 10"), case ignored.
const collator = new Intl.Collator(["ru", "en"], { numeric: true, sensitivity: "base" });
