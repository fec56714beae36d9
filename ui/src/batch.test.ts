import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn(), Channel: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import { setLocale } from "./i18n";
import { batchProgressText, unfinishedBatchText } from "./batch";

describe("a batch that stopped before its end", () => {
  const batch = { id: "batch-1", key: "k", reason: "Approved", total: 6, started_at_ms: 1, documents_left: ["a", "b"] };
  it("says how many of its documents are left and under which reason", () => {
    setLocale("en");
    expect(unfinishedBatchText(batch)).toBe(
      "A signing batch stopped before its end: 2 of its 6 documents are not signed yet (reason: “Approved”).",
    );
    setLocale("ru");
    expect(unfinishedBatchText(batch)).toBe(
      "Пакетная подпись остановилась раньше конца: не подписаны 2 из 6 документов (основание: «Approved»).",
    );
  });
});

describe("the progress line of a running batch", () => {
  const titles = new Map([
    ["a", "Order 1"],
    ["b", "Order 2"],
    ["c", "Order 3"],
  ]);
  const finished = { result: "signed" as const, revision: 2 };
  it("names the documents being signed now", () => {
    setLocale("en");
    expect(batchProgressText({ done: 1, total: 3, document: "a", result: finished, signing: ["b", "c"] }, titles)).toBe(
      "1 of 3 done; signing now: Order 2, Order 3",
    );
    setLocale("ru");
    expect(batchProgressText({ done: 1, total: 3, document: "a", result: finished, signing: ["b"] }, titles)).toBe(
      "Готово 1 из 3; сейчас подписываются: Order 2",
    );
  });
  it("names the last one finished when nothing is under way", () => {
    setLocale("en");
    expect(batchProgressText({ done: 3, total: 3, document: "c", result: finished, signing: [] }, titles)).toBe("3 of 3: Order 3");
  });
});
