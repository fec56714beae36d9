// The always-visible sync indicator: online or offline, changes waiting, the last sync.
import { api, onSyncState, type DocumentSyncState, type PurgeNotice, type SyncState } from "./api";
import { h, noticeBox } from "./dom";
import { errorText } from "./errors";
import { formatSize } from "./format";
import { locale, t } from "./i18n";

/** The indicator's text for `state` (null: the vault does not sync). */
export function syncSummary(state: SyncState | null, formatTime: (ms: number) => string): string {
  if (state === null) return t("sync.local");
  if (state.device_revoked) return t("sync.revoked");
  if (state.needs_sign_in) return t("sync.signIn");
  const moving = state.transfer;
  const sending = state.sending;
  const counts = (p: NonNullable<SyncState["transfer"]>) => ({
    done: p.documents_done,
    total: p.documents_total,
    bytesDone: formatSize(p.bytes_done, locale()),
    bytesTotal: formatSize(p.bytes_total, locale()),
  });
  const parts = [
    state.running && sending
      ? t("sync.sending", counts(sending))
      : state.running && moving
      ? t("sync.receiving", counts(moving))
      : state.running
        ? t("sync.running")
        : state.paused
          ? t("sync.paused")
          : state.online
            ? t("sync.online")
            : t("sync.offline"),
  ];
  parts.push(state.pending_operations > 0 ? t("sync.pending", { count: state.pending_operations }) : t("sync.nothingPending"));
  parts.push(state.last_success_ms === null ? t("sync.never") : t("sync.last", { time: formatTime(state.last_success_ms) }));
  return parts.join(" · ");
}

/** Why the last round failed, as the user reads it (null: it did not, or the indicator already
 * says why — sign in again, revoked). */
export function syncProblem(state: SyncState | null): string | null {
  if (state === null || state.last_error === null || state.needs_sign_in || state.device_revoked) return null;
  return t("sync.problem", { reason: errorText(state.last_error) });
}

/** Which look the indicator has. */
export function syncTone(state: SyncState | null): "local" | "online" | "offline" | "problem" {
  if (state === null) return "local";
  if (state.device_revoked || state.needs_sign_in) return "problem";
  return state.online ? "online" : "offline";
}

/** The indicator, its "sync now" button and, for a vault that does not sync, "connect"
 * (`onConnect`); `stop` stops listening. */
export function syncIndicator(
  onState: (state: SyncState) => void,
  onConnect: () => void,
): { element: HTMLElement; stop: () => void } {
  const text = h("span", { id: "sync-text" });
  const button = h("button", { id: "sync-now", type: "button", hidden: true }, t("sync.now"));
  // A long transfer can be stopped; what arrived is kept, and "sync now" resumes it.
  const stop = h("button", { id: "sync-cancel", type: "button", hidden: true }, t("sync.cancel"));
  stop.addEventListener("click", () => {
    // The indicator shows whether it took: "paused", or the transfer still moving.
    stop.disabled = true;
    void api
      .cancelSync()
      .catch(() => undefined)
      .finally(() => {
        stop.disabled = false;
      });
  });
  const connect = h("button", { id: "connect-open", type: "button", hidden: true }, t("connect.open"));
  connect.addEventListener("click", onConnect);
  const problem = h("span", { id: "sync-problem", class: "sync-problem", hidden: true });
  const element = h("div", { id: "sync-status", class: "sync", role: "status", "aria-live": "polite" }, text, stop, button, connect, problem);
  const time = (ms: number) => new Date(ms).toLocaleTimeString();
  const show = (state: SyncState | null) => {
    text.textContent = syncSummary(state, time);
    const why = syncProblem(state);
    problem.textContent = why ?? "";
    problem.title = why ?? "";
    problem.hidden = why === null;
    element.dataset.tone = syncTone(state);
    button.hidden = state === null || state.device_revoked;
    const moving = state?.sending ?? state?.transfer;
    stop.hidden = !state?.running || !moving;
    if (moving) text.title = moving.current_title;
    else text.removeAttribute("title");
    // Not connected, or signed out: the connect screen signs in.
    connect.hidden = state !== null && !state.needs_sign_in;
  };
  button.addEventListener("click", () => void api.syncNow());
  let unlisten: (() => void) | null = null;
  let stopped = false;
  void onSyncState((state) => {
    show(state);
    onState(state);
  }).then((fn) => {
    if (stopped) fn();
    else unlisten = fn;
  });
  void api.syncState().then(show);
  return {
    element,
    stop: () => {
      stopped = true;
      unlisten?.();
    },
  };
}

/** A badge on a document in the list. */
export interface DocumentBadge {
  kind: "synced" | "resign" | "refused" | "pending";
  text: string;
  title?: string;
}

/** The badges for a document's standing with the server (none for a local document). */
export function documentBadges(state: DocumentSyncState | undefined): DocumentBadge[] {
  if (!state) return [];
  if (state.standing === "synced") return [{ kind: "synced", text: t("docs.synced") }];
  const badges: DocumentBadge[] = [];
  if (state.sign_again) badges.push({ kind: "resign", text: t("docs.resign") });
  if (state.refused) {
    badges.push({ kind: "refused", text: t("docs.refused", { reason: state.refused }), title: state.refused });
  }
  const waiting = state.pending_revisions + state.pending_annotations;
  if (waiting > 0) badges.push({ kind: "pending", text: t("docs.pending", { count: waiting }) });
  return badges;
}

/** What the user is told of a document the server took back, and of the changes that went with it. */
export function purgeNoticeText(notice: PurgeNotice): string {
  const parts = [t("notice.purged", { title: notice.title })];
  if (notice.discarded_annotations > 0 || notice.discarded_revisions > 0) {
    parts.push(t("notice.discarded", { annotations: notice.discarded_annotations, revisions: notice.discarded_revisions }));
  }
  if (notice.refused) parts.push(t("notice.refused", { reason: notice.refused }));
  return parts.join(" ");
}

/** The notices of documents the server took back, until the user dismisses them; `refresh`
 * reads them again (after each sync round). */
export function purgeNotices(showError: (e: unknown) => void): { element: HTMLElement; refresh: () => Promise<void> } {
  return noticeBox(
    "purge-notices",
    api.purgeNotices,
    (notices, refresh) => {
      const upTo = Math.max(...notices.map((n) => n.id));
      const dismiss = h("button", { id: "purge-notices-dismiss", type: "button" }, t("notice.dismiss"));
      dismiss.addEventListener("click", () => {
        void api
          .dismissPurgeNotices(upTo)
          .then(refresh)
          .catch(showError);
      });
      return [
        ...notices.map((n) =>
          h(
            "p",
            { "data-notice-id": String(n.id), "data-document-id": n.document_id ?? "" },
            h("span", { class: "badge purged" }, t("docs.purged")),
            " ",
            purgeNoticeText(n),
          ),
        ),
        dismiss,
      ];
    },
    showError,
  );
}
