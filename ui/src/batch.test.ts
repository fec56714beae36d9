import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn(), Channel: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import { setLocale } from "./i18n";
import { unfinishedBatchText } from "./batch";

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
