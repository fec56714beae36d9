import { describe, expect, it, vi } from "vitest";

vi.mock("@tauri-apps/api/core", () => ({ invoke: vi.fn() }));
vi.mock("@tauri-apps/api/event", () => ({ listen: vi.fn() }));

import { setLocale } from "./i18n";
import type { SyncState } from "./api";
import { documentBadges, purgeNoticeText, syncProblem, syncSummary, syncTone } from "./syncstatus";

const base: SyncState = {
  online: true,
  running: false,
  last_success_ms: 1_000,
  pending_operations: 0,
  attempts: 1,
  last_error: null,
  needs_sign_in: false,
  device_revoked: false,
  transfer: null,
  sending: null,
  paused: false,
};
const at = (ms: number) => `T${ms}`;

describe("the sync indicator", () => {
  it("says whether the vault syncs, is online, what waits and when it last synced", () => {
    setLocale("en");
    expect(syncSummary(null, at)).toBe("Local vault — not connected to a server");
    expect(syncSummary(base, at)).toBe("Online · everything sent · last sync T1000");
    expect(syncSummary({ ...base, online: false, pending_operations: 3, last_success_ms: null }, at)).toBe(
      "Offline — working locally · changes waiting: 3 · not synced yet",
    );
    expect(syncSummary({ ...base, running: true }, at)).toMatch(/^Syncing…/);
    setLocale("ru");
    expect(syncSummary({ ...base, online: false, pending_operations: 2 }, at)).toBe(
      "Нет связи — работа локально · Ожидают отправки: 2 · последняя синхронизация T1000",
    );
  });

  it("shows a running transfer's documents and bytes, and a stopped one as paused", () => {
    setLocale("en");
    const transfer = { documents_total: 40, documents_done: 3, bytes_total: 16 * 1024 * 1024, bytes_done: 1_258_291, current_title: "Register 4", documents_stored: 0 };
    expect(syncSummary({ ...base, running: true, transfer }, at)).toBe(
      "Receiving documents: 3 of 40 (1.2 MB of 16 MB) · everything sent · last sync T1000",
    );
    expect(syncSummary({ ...base, paused: true, pending_operations: 1 }, at)).toBe(
      "Sync paused — what arrived is kept; “Sync now” goes on · changes waiting: 1 · last sync T1000",
    );
    setLocale("ru");
    expect(syncSummary({ ...base, running: true, transfer }, at)).toMatch(/^Получение документов: 3 из 40 \(1.2 МБ из 16 МБ\)/);
  });

  it("shows the signed documents going to the server before what arrives", () => {
    setLocale("en");
    const sending = { documents_total: 6, documents_done: 2, bytes_total: 3 * 1024 * 1024, bytes_done: 1024 * 1024, current_title: "Order 3", documents_stored: 0 };
    const transfer = { ...sending, documents_total: 40 };
    expect(syncSummary({ ...base, running: true, pending_operations: 6, sending, transfer }, at)).toBe(
      "Sending signed documents: 2 of 6 (1.0 MB of 3.0 MB) · changes waiting: 6 · last sync T1000",
    );
    setLocale("ru");
    expect(syncSummary({ ...base, running: true, sending }, at)).toMatch(/^Отправка подписанных документов: 2 из 6/);
    // Not running: the last round's figures are not shown.
    expect(syncSummary({ ...base, sending }, at)).toMatch(/^В сети/);
  });

  it("says why the last attempt failed, in the user's language, until a round succeeds", () => {
    const unreachable = { code: "server_unreachable", message: "connection refused" };
    setLocale("en");
    expect(syncProblem({ ...base, online: false, last_error: unreachable })).toBe(
      "The last attempt failed — The server cannot be reached: check the address and the connection. Your work stays here and is sent later. (connection refused)",
    );
    setLocale("ru");
    expect(syncProblem({ ...base, online: false, last_error: unreachable })).toMatch(/^Последняя попытка не удалась — .*\(connection refused\)$/);
    // A code the catalogue does not know still shows the engine's words.
    expect(syncProblem({ ...base, last_error: { code: "something_new", message: "odd reply" } })).toMatch(/odd reply/);
    expect(syncProblem(base)).toBeNull();
    expect(syncProblem(null)).toBeNull();
    // Sign-in and revocation are said by the indicator itself.
    expect(syncProblem({ ...base, needs_sign_in: true, last_error: { code: "sign_in_needed", message: "" } })).toBeNull();
  });

  it("puts sign-in and revocation before everything else", () => {
    setLocale("en");
    expect(syncSummary({ ...base, needs_sign_in: true }, at)).toMatch(/^Sign in again/);
    expect(syncSummary({ ...base, device_revoked: true, needs_sign_in: true }, at)).toMatch(/revoked/);
    expect(syncTone({ ...base, needs_sign_in: true })).toBe("problem");
    expect(syncTone({ ...base, online: false })).toBe("offline");
    expect(syncTone(null)).toBe("local");
  });
});

describe("a document's sync badges", () => {
  const linked = {
    document_id: "d",
    standing: "synced" as const,
    pending_revisions: 0,
    pending_annotations: 0,
    sign_again: false,
    refused: null,
  };
  it("say it is synced, what waits, what must be signed again and why the server refused", () => {
    setLocale("en");
    expect(documentBadges(undefined)).toEqual([]);
    expect(documentBadges(linked)).toEqual([{ kind: "synced", text: "Synced" }]);
    expect(documentBadges({ ...linked, standing: "pending", pending_revisions: 1, pending_annotations: 2 }).map((b) => b.text)).toEqual([
      "Waiting to sync: 3 change(s)",
    ]);
    const refused = documentBadges({
      ...linked,
      standing: "refused",
      sign_again: true,
      refused: "not visible to you",
      pending_revisions: 1,
    });
    expect(refused.map((b) => b.kind)).toEqual(["resign", "refused", "pending"]);
    expect(refused[1]?.text).toBe("Refused by the server: not visible to you");
    setLocale("ru");
    expect(documentBadges({ ...linked, standing: "conflict", sign_again: true })[0]?.text).toBe("Требуется подписать заново");
    expect(documentBadges(linked)[0]?.text).toBe("Синхронизирован");
  });
});

describe("the notice of a document the server took back", () => {
  const notice = { id: 3, document_id: "d7", at_ms: 5, title: "Report 7", discarded_annotations: 0, discarded_revisions: 0, refused: null };
  it("names the document, and what went with it only when something did", () => {
    setLocale("en");
    expect(purgeNoticeText(notice)).toBe(
      "“Report 7” was taken back by the server (its assignment ended) and removed from this workstation.",
    );
    expect(purgeNoticeText({ ...notice, discarded_annotations: 2, discarded_revisions: 1, refused: "not assigned to you" })).toBe(
      "“Report 7” was taken back by the server (its assignment ended) and removed from this workstation. " +
        "Discarded with it — annotation changes not yet sent: 2; signed revisions the server did not take: 1. " +
        "The server's reason: not assigned to you.",
    );
    setLocale("ru");
    expect(purgeNoticeText({ ...notice, discarded_revisions: 1 })).toBe(
      "Сервер отозвал документ «Report 7» (его назначение закончилось), и он удалён с этого рабочего места. " +
        "Вместе с ним удалены — неотправленные изменения пометок: 0; подписанные версии, не принятые сервером: 1.",
    );
  });
});
