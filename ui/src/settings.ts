// The settings panel: where the inbox watches, and which server the vault syncs with. Language and
// auto-lock stay in the toolbar, where they are changed most. Presentation only.
import { api } from "./api";
import { showConnect } from "./connect";
import { h } from "./dom";
import { t } from "./i18n";

/** What the main screen lends the panel: its language and auto-lock fields, and intake's log. */
export interface SettingsExtras {
  language: HTMLElement;
  autolock: HTMLElement;
  recentIntake: string[];
}

export async function showSettings(container: HTMLElement, showError: (e: unknown) => void, extras: SettingsExtras): Promise<void> {
  const [info, rejections] = await Promise.all([api.appInfo(), api.inboxRejections().catch((e: unknown) => (showError(e), []))]);
  const general = h(
    "section",
    { id: "settings-general" },
    h("h3", {}, t("settings.general")),
    h("label", { class: "inline" }, t("toolbar.language"), extras.language),
    h("label", { class: "inline" }, t("autolock.label"), extras.autolock),
  );
  const folder = h("input", { id: "settings-inbox", type: "text", required: true, value: info.inbox_dir ?? "" });
  const save = h("button", { id: "settings-inbox-save", type: "submit" }, t("settings.save"));
  const message = h("p", { id: "settings-message", class: "muted", role: "status" });
  const inboxForm = h(
    "form",
    { id: "settings-inbox-form", class: "connect" },
    h("h3", {}, t("settings.inbox")),
    h("p", { class: "muted" }, t("settings.inboxExplain")),
    h("label", { for: "settings-inbox" }, t("settings.inboxFolder"), folder),
    save,
    message,
  );
  const when = (ms: number) => new Date(ms).toLocaleString();
  const activity = h(
    "section",
    { id: "settings-activity" },
    h("h4", {}, t("settings.intakeRecent")),
    extras.recentIntake.length === 0
      ? h("p", { class: "muted" }, t("settings.intakeNone"))
      : h("ul", { id: "settings-intake", class: "plain" }, ...extras.recentIntake.map((line) => h("li", {}, line))),
    h("h4", {}, t("settings.rejected")),
    rejections.length === 0
      ? h("p", { class: "muted" }, t("settings.rejectedNone"))
      : h(
          "ul",
          { id: "settings-rejected", class: "plain" },
          ...rejections.map((r) =>
            h(
              "li",
              { "data-name": r.name },
              h("strong", {}, r.source),
              ` — ${r.reason || t("settings.rejectedNoReason")} `,
              h("span", { class: "muted" }, t("settings.rejectedWhere", { name: r.name, when: when(r.rejected_at_ms) })),
            ),
          ),
        ),
  );
  inboxForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    save.disabled = true;
    message.textContent = "";
    try {
      const watched = await api.setInboxFolder(folder.value);
      folder.value = watched;
      message.textContent = t("settings.inboxSaved", { path: watched });
    } catch (e) {
      showError(e);
    } finally {
      save.disabled = false;
    }
  });
  // A server that moved (a new host, the same data and CA): the vault signs in at the new address
  // with the device already enrolled, and syncs there from then on.
  const moved = info.server ? h("button", { id: "settings-server-move", type: "button", class: "secondary" }, t("settings.serverMove")) : null;
  const known = info.server;
  moved?.addEventListener("click", () => {
    if (!known) return;
    const holder = h("div", { id: "settings-server-form" });
    server.replaceChildren(h("h3", {}, t("settings.server")), h("p", { class: "muted" }, t("settings.serverMoveExplain")), holder);
    showConnect(holder, info.unlocked_user ?? "", showError, () => void showSettings(container, showError, extras), false, known);
    const address = holder.querySelector<HTMLInputElement>("#connect-address");
    address?.focus();
    address?.select();
  });
  const server = h(
    "section",
    { id: "settings-server" },
    h("h3", {}, t("settings.server")),
    h(
      "p",
      { id: "settings-server-address" },
      info.server ? t("settings.serverConnected", { address: info.server.address, user: info.unlocked_user ?? "" }) : t("sync.local"),
    ),
    moved,
  );
  container.replaceChildren(h("div", { id: "settings", class: "card wide" }, h("h2", {}, t("settings.title")), general, inboxForm, activity, server));
  folder.focus();
}
