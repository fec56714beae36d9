import { describe, expect, it } from "vitest";
import { arrange, FILTERS, passes, type ListFacts } from "./arrange";
import type { DocumentMarks, DocumentSummary, DocumentSyncState } from "./api";

function doc(id: string, title: string, imported: number, size = 1000): DocumentSummary {
  return { id, sha256: id, title, page_count: 1, byte_size: size, source_name: `${id}.pdf`, imported_at_ms: imported };
}

const docs = [
  doc("a", "Донесение № 10", 3000, 500),
  doc("b", "Донесение № 2", 1000, 900),
  doc("c", "contract", 2000, 700),
  doc("d", "Appraisal", 4000, 100),
];

function marks(m: Partial<DocumentMarks> & { document_id: string }): [string, DocumentMarks] {
  return [m.document_id, { opened: false, annotations: 0, signed: false, awaiting_signature: false, ...m }];
}

function state(s: Partial<DocumentSyncState> & { document_id: string }): [string, DocumentSyncState] {
  return [s.document_id, { standing: "synced", pending_revisions: 0, pending_annotations: 0, sign_again: false, refused: null, ...s }];
}

const facts: ListFacts = {
  marks: new Map([
    marks({ document_id: "a", opened: true, signed: true }),
    marks({ document_id: "b", awaiting_signature: true }),
    marks({ document_id: "c", opened: true, annotations: 2, awaiting_signature: true }),
    marks({ document_id: "d" }),
  ]),
  syncStates: new Map([
    state({ document_id: "a", standing: "pending", pending_revisions: 1 }),
    state({ document_id: "b" }),
    state({ document_id: "c", standing: "refused", sign_again: true, refused: "not visible to you" }),
  ]),
};

const ids = (list: DocumentSummary[]) => list.map((d) => d.id);

describe("the document list's order", () => {
  it("is newest first unless asked otherwise, and every order keeps every document", () => {
    expect(ids(arrange(docs, "newest", "all", facts))).toEqual(["d", "a", "c", "b"]);
    expect(ids(arrange(docs, "oldest", "all", facts))).toEqual(["b", "c", "a", "d"]);
    expect(ids(arrange(docs, "size", "all", facts))).toEqual(["b", "c", "a", "d"]);
  });

  it("sorts titles as people read them: case ignored, numbers by value, both alphabets", () => {
    const titles = arrange(docs, "title", "all", facts).map((d) => d.title);
    expect(titles.indexOf("Донесение № 2")).toBeLessThan(titles.indexOf("Донесение № 10"));
    expect(titles.indexOf("Appraisal")).toBeLessThan(titles.indexOf("contract"));
  });

  it("does not reorder the list it was given", () => {
    const before = ids(docs);
    arrange(docs, "title", "all", facts);
    expect(ids(docs)).toEqual(before);
  });
});

describe("the document list's filters", () => {
  it("match the badges the rows show", () => {
    const shown = (filter: (typeof FILTERS)[number]) => ids(arrange(docs, "newest", filter, facts));
    expect(shown("new")).toEqual(["d", "b"]);
    expect(shown("awaiting")).toEqual(["c", "b"]);
    expect(shown("signed")).toEqual(["a"]);
    expect(shown("annotated")).toEqual(["c"]);
    expect(shown("synced")).toEqual(["b"]);
    expect(shown("pending")).toEqual(["a"]);
    expect(shown("resign")).toEqual(["c"]);
    expect(shown("refused")).toEqual(["c"]);
  });

  it("treat a document the engine has said nothing about as new and settled", () => {
    const unknown = doc("z", "Unlisted", 5000);
    const empty: ListFacts = { marks: new Map(), syncStates: new Map() };
    expect(FILTERS.filter((f) => passes(unknown, f, empty))).toEqual(["all", "new"]);
  });
});
