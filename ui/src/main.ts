// The Outpost window: unlock, the document list, search, and a page viewer.
// Presentation only: every decision is made by the engine behind the commands.
import {
  api,
  asCommandError,
  onIntake,
  onVaultWiped,
  type DocumentMarks,
  type DocumentSummary,
  type DocumentSyncState,
  type IntakeNotice,
  type SearchHit,
} from "./api";
import { h } from "./dom";
import { formatSize } from "./format";
import { initialLocale, locale, setLocale, t, type Locale, type MessageKey } from "./i18n";
import { errorText } from "./errors";
import { arrange, FILTERS, SORTS, type Filter, type Sort } from "./arrange";
import { showBatch, unfinishedBatches } from "./batch";
import { showKeys } from "./keys";
import { documentBadges, purgeNotices, syncIndicator } from "./syncstatus";
import { showConnect } from "./connect";
import { showSettings } from "./settings";
import { autolockSeconds, setAutolockMinutes, startAutolock } from "./autolock";
import { openViewer } from "./viewer";
import { virtualList, type VirtualList } from "./virtuallist";
import { activeLesson, pointAt, tutorialPanel } from "./tutorial";
import { showTrainees } from "./trainees";

const root = document.getElementById("app") as HTMLElement;
/** Height of one row of the document list, in CSS pixels (the stylesheet draws it so). */
const DOC_ROW_HEIGHT = 64;
const platform = navigator.userAgent;
let stopListening: (() => void) | null = null;
// What intake did since the app started, the latest first (shown in the settings' inbox part).
const INTAKE_LOG_LENGTH = 50;
const intakeLog: string[] = [];
let closeViewer: (() => void) | null = null;

/** One line describing an intake notice. */
function intakeText(notice: IntakeNotice): string {
  if (notice.kind === "error") return t("inbox.error", { message: notice.message });
  const e = notice.event;
  switch (e.kind) {
    case "imported":
      return t("inbox.imported", { source: e.source });
    case "duplicate":
      return t("inbox.duplicate", { source: e.source });
    case "rejected":
      return t("inbox.rejected", { source: e.source, reason: e.reason });
    case "recovered":
      return t("inbox.recovered", { source: e.source });
    case "deferred":
      return t("inbox.deferred", { source: e.source, error: e.error });
  }
}

// Where the list's order and filter are kept on this workstation.
const SORT_KEY = "outpost.listSort";
const FILTER_KEY = "outpost.listFilter";

/** The choice kept under `key`, if it is one of `values`; else the first of them. */
function storedChoice<T extends string>(values: readonly [T, ...T[]], key: string): T {
  return values.find((v) => v === localStorage.getItem(key)) ?? values[0];
}

/** A select of `values` labelled from the catalogue (`PREFIX.value`), showing `current`; a choice
 * is kept under `key` and handed to `chosen`. */
function listChoice<T extends string>(
  id: string,
  prefix: string,
  values: readonly [T, ...T[]],
  current: T,
  key: string,
  chosen: (value: T) => void,
): HTMLSelectElement {
  const select = h(
    "select",
    { id },
    ...values.map((v) => h("option", { value: v, selected: v === current }, t(`${prefix}.${v}` as MessageKey))),
  );
  select.addEventListener("change", () => {
    const value = values.find((v) => v === select.value) ?? values[0];
    localStorage.setItem(key, value);
    chosen(value);
  });
  return select;
}

function languageSwitch(onChange: () => void, id = "language"): HTMLElement {
  const select = h(
    "select",
    { id, "aria-label": t("toolbar.language") },
    h("option", { value: "ru", selected: locale() === "ru" }, "Русский"),
    h("option", { value: "en", selected: locale() === "en" }, "English"),
  );
  select.addEventListener("change", () => {
    const chosen = select.value as Locale;
    setLocale(chosen);
    localStorage.setItem("outpost.locale", chosen);
    document.documentElement.lang = chosen;
    onChange();
  });
  return select;
}

async function showUnlock(notice?: string): Promise<void> {
  stopListening?.();
  stopListening = null;
  // What intake did belongs to the session that ended: the next user does not see it.
  intakeLog.length = 0;
  const info = await api.appInfo();
  if (info.unlocked_user) return showMain();
  const userInput = h("input", {
    id: "unlock-user",
    name: "user",
    autocomplete: "username",
    value: info.suggested_user ?? info.users[0] ?? "",
    list: "known-users",
    required: true,
  });
  const password = h("input", {
    id: "unlock-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const error = h("p", { id: "unlock-error", class: "error", role: "alert" }, notice ?? "");
  const submit = h("button", { id: "unlock-submit", type: "submit" }, t("unlock.submit"));
  const form = h(
    "form",
    { id: "unlock-form", class: "card" },
    h("h1", {}, t("unlock.heading")),
    info.users.length === 0 ? h("p", {}, t("unlock.noUsers")) : null,
    h("label", {}, t("unlock.user"), userInput),
    h("datalist", { id: "known-users" }, ...info.users.map((u) => h("option", { value: u }))),
    h("label", {}, t("unlock.password"), password),
    error,
    submit,
  );
  // The tutorial needs no password of a newcomer; a user with a vault here types its password,
  // since the progress goes to their supervisor under their name.
  const tutorialButton = h(
    "button",
    { id: "start-tutorial", type: "button", class: "secondary" },
    activeLesson(localStorage) ? t("tutorial.continue") : t("tutorial.start"),
  );
  tutorialButton.addEventListener("click", async () => {
    tutorialButton.disabled = true;
    error.textContent = "";
    try {
      await api.startTutorial(userInput.value.trim() || "trainee", password.value);
      password.value = "";
      await showMain();
    } catch (e) {
      error.textContent = errorText(e);
      tutorialButton.disabled = false;
    }
  });
  const tutorialCard = h(
    "section",
    { class: "card tutorial-card" },
    h("p", { class: "muted" }, t("tutorial.startHint")),
    tutorialButton,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    submit.textContent = t("unlock.working");
    error.textContent = "";
    try {
      await api.unlock(userInput.value.trim(), password.value);
      password.value = "";
      await showMain();
    } catch (e) {
      error.textContent = errorText(e);
      submit.disabled = false;
      submit.textContent = t("unlock.submit");
      password.select();
    }
  });
  // First run of a user here: their server sign-in makes their vault.
  const setupButton = h("button", { id: "setup-open", type: "button", class: "secondary" }, t("setup.open"));
  const setupCard = h(
    "section",
    { class: "card tutorial-card" },
    h("p", { class: "muted" }, t("setup.hint")),
    setupButton,
  );
  const main = h("main", { class: "center column" }, form, setupCard, tutorialCard);
  setupButton.addEventListener("click", () => {
    const back = h("button", { id: "setup-back", type: "button", class: "secondary" }, t("setup.back"));
    back.addEventListener("click", () => void showUnlock());
    const holder = h("section", { class: "card wide" });
    const problem = h("p", { id: "setup-error", class: "error", role: "alert" });
    main.replaceChildren(holder, problem, back);
    showConnect(
      holder,
      userInput.value.trim(),
      (e) => {
        problem.textContent = errorText(e);
      },
      () => void showMain(),
      true,
    );
  });
  root.replaceChildren(
    h("header", { class: "bar" }, h("strong", {}, t("app.title")), languageSwitch(() => void showUnlock())),
    main,
  );
  // The lock lesson's last step happens here.
  if (activeLesson(localStorage) === "lock_and_unlock") pointAt(document, "#start-tutorial");
  (userInput.value ? password : userInput).focus();
  markFirstDrawn("outpost:unlock-ready");
}

/** Sets the performance mark `name` once the next frame is painted, the first time only: the app
 * benchmark (benches/app_window.rs) times the start-up from these marks. */
function markFirstDrawn(name: string): void {
  if (performance.getEntriesByName(name, "mark").length > 0) return;
  requestAnimationFrame(() => setTimeout(() => performance.mark(name), 0));
}

async function showMain(): Promise<void> {
  const opening = await api.appInfo();
  const sandbox = opening.sandbox;
  // A trainee's real vault holds nothing: the tutorial is where they work.
  const trainee = !sandbox && opening.server_role === "trainee";
  let documents: DocumentSummary[] = [];
  // Documents whose signed revision lost a conflict on the server: they need signing again.
  let resign = new Set<string>();
  // Each server document's standing with the server (changes waiting, refusals).
  let syncStates = new Map<string, DocumentSyncState>();
  // Whether each document was opened yet, and its annotations.
  let marks = new Map<string, DocumentMarks>();
  // Reads of the list may overlap (a sync storing documents as they arrive): only the newest
  // one started is taken.
  let listReads = 0;
  async function loadDocuments(): Promise<void> {
    const read = ++listReads;
    const [list, states, documentMarks] = await Promise.all([
      api.listDocuments(),
      api.documentSyncStates(),
      api.documentMarks(),
    ]);
    if (read !== listReads) return;
    documents = list;
    // A document opened here stays opened: a list read while an opening was being recorded
    // must not turn it back to new.
    const opened = new Set([...marks.values()].filter((m) => m.opened).map((m) => m.document_id));
    marks = new Map(documentMarks.map((m) => [m.document_id, { ...m, opened: m.opened || opened.has(m.document_id) }]));
    syncStates = new Map(states.map((state) => [state.document_id, state]));
    resign = new Set(states.filter((state) => state.sign_again).map((state) => state.document_id));
  }
  function markBadges(id: string): HTMLElement[] {
    const m = marks.get(id);
    if (!m) return [];
    const badges = [m.opened ? h("span", { class: "badge read" }, t("docs.read")) : h("span", { class: "badge new" }, t("docs.new"))];
    if (m.annotations > 0) badges.push(h("span", { class: "badge annotated" }, t("docs.annotated", { count: m.annotations })));
    if (m.signed) badges.push(h("span", { class: "badge signed" }, t("docs.signed")));
    else if (m.awaiting_signature) badges.push(h("span", { class: "badge awaiting" }, t("docs.awaiting")));
    return badges;
  }
  function syncBadges(id: string): HTMLElement[] {
    return documentBadges(syncStates.get(id)).map((badge) =>
      h("span", { class: `badge ${badge.kind}`, title: badge.title ?? "" }, badge.text),
    );
  }
  const listPane = h("section", { id: "list-pane", class: "pane" });
  const viewer = h("section", { id: "viewer", class: "pane viewer" }, h("p", { class: "muted" }, t("viewer.placeholder")));
  const status = h("p", { id: "status", class: "error", role: "alert" });
  const searchInput = h("input", { id: "search-input", type: "search", placeholder: t("toolbar.search") });
  const titleFilter = h("input", { id: "title-filter", type: "search", placeholder: t("toolbar.titleFilter") });
  const searchForm = h(
    "form",
    { id: "search-form", class: "search" },
    searchInput,
    titleFilter,
    h("button", { type: "submit" }, t("toolbar.searchButton")),
    h("button", { type: "button", id: "search-clear", onclick: () => { searchInput.value = ""; titleFilter.value = ""; renderList(); } }, t("toolbar.clear")),
  );
  const activity = h("p", { id: "inbox-activity", class: "muted activity" });
  const lockButton = h("button", { id: "lock", type: "button" }, t("toolbar.lock"));
  const keysButton = h("button", { id: "keys-open", type: "button" }, t("keys.open"));
  // A panel (keys, connect) takes the viewer's place; its errors go to the status line.
  function showPanel(show: (showError: (e: unknown) => void) => void): void {
    closeViewer?.();
    closeViewer = null;
    status.textContent = "";
    show((e) => {
      status.textContent = errorText(e);
    });
  }
  keysButton.addEventListener("click", () => showPanel((showError) => void showKeys(viewer, showError)));
  const settingsButton = sandbox ? null : h("button", { id: "settings-open", type: "button" }, t("settings.open"));
  const openSettings = (): void =>
    showPanel(
      (showError) =>
        void showSettings(viewer, showError, {
          language: languageSwitch(() => void showMain().then(() => document.getElementById("settings-open")?.click()), "settings-language"),
          autolock: autolockField("settings-autolock"),
          recentIntake: intakeLog,
        }),
    );
  settingsButton?.addEventListener("click", openSettings);
  // A supervisor's view of their trainees (the server answers only supervisors and admins).
  const traineesButton = sandbox ? null : h("button", { id: "trainees-open", type: "button", hidden: true }, t("trainees.open"));
  traineesButton?.addEventListener("click", () => showPanel((showError) => void showTrainees(viewer, showError)));
  async function lockNow(notice?: string): Promise<void> {
    closeViewer?.();
    closeViewer = null;
    await api.lock();
    await showUnlock(notice);
  }
  lockButton.addEventListener("click", () => void lockNow(sandbox ? t("step.unlock") : undefined));
  // Signing out ends this workstation's session on the server too: the next sync asks for the
  // password and code again (the vault, its documents and waiting work stay).
  const signOutButton = sandbox ? null : h("button", { id: "sign-out", type: "button", hidden: true }, t("signout.button"));
  signOutButton?.addEventListener("click", async () => {
    closeViewer?.();
    closeViewer = null;
    try {
      const told = await api.signOut();
      await showUnlock(told ? t("signout.done") : t("signout.doneOffline"));
    } catch (e) {
      status.textContent = errorText(e);
    }
  });
  // Leaving the tutorial locks its practice vault: real work takes the real unlock.
  const leaveButton = sandbox ? h("button", { id: "leave-tutorial", type: "button" }, t("tutorial.leave")) : null;
  leaveButton?.addEventListener("click", () => void lockNow(t("tutorial.left")));
  const tutorial = sandbox ? tutorialPanel((e) => { status.textContent = errorText(e); }) : null;
  // Staff open the tutorial at any time: their vault is locked first, and coming back to real
  // work takes its real unlock.
  const tutorialButton = sandbox ? null : h("button", { id: "open-tutorial", type: "button" }, t("tutorial.open"));
  tutorialButton?.addEventListener("click", async () => {
    if (!tutorialButton) return;
    tutorialButton.disabled = true;
    closeViewer?.();
    closeViewer = null;
    const user = (await api.appInfo()).unlocked_user ?? "trainee";
    try {
      await api.startTutorial(user);
      await showMain();
    } catch (e) {
      // The real vault was locked on the way: its unlock screen says what went wrong.
      await showUnlock(errorText(e));
    }
  });
  // Idle for the configured time (default 15 minutes): lock.
  const stopAutolock = startAutolock(window, () => autolockSeconds(localStorage), () => void lockNow(t("autolock.locked")));
  // The idle time is set in the toolbar and in the settings panel; each shows the other's choice.
  const autolockInputs: HTMLInputElement[] = [];
  function autolockField(id: string): HTMLInputElement {
    const input = h("input", {
      id,
      type: "number",
      min: 1,
      max: 1440,
      value: Math.round(autolockSeconds(localStorage) / 60),
      "aria-label": t("autolock.label"),
      title: t("autolock.label"),
    });
    input.addEventListener("change", () => {
      const minutes = Number(input.value);
      if (Number.isFinite(minutes)) setAutolockMinutes(localStorage, minutes);
      for (const each of autolockInputs) each.value = String(Math.round(autolockSeconds(localStorage) / 60));
    });
    // Fields of closed settings panels are let go.
    autolockInputs.splice(0, autolockInputs.length, ...autolockInputs.filter((each) => each.isConnected), input);
    return input;
  }
  const autolockSetting = h("label", { class: "autolock" }, t("autolock.short"), autolockField("autolock-minutes"));

  const selected = new Set<string>();
  // The list draws only the rows in view: it stays smooth with thousands of documents. It shows
  // `shown`: the documents in the chosen order that pass the chosen filter (kept on this
  // workstation between sessions).
  let docList: VirtualList | null = null;
  let sort: Sort = storedChoice(SORTS, SORT_KEY);
  let filter: Filter = storedChoice(FILTERS, FILTER_KEY);
  let shown: DocumentSummary[] = [];
  function docRow(index: number): HTMLElement {
    const doc = shown[index];
    if (!doc) return h("li", {});
    const open = (): void => void openDocument(doc.id, 1);
    return h(
      "li",
      {
        "data-doc-id": doc.id,
        tabindex: 0,
        onclick: open,
        onkeydown: (event: Event) => {
          if ((event as KeyboardEvent).key === "Enter" && event.target === event.currentTarget) open();
        },
      },
      h(
        "div",
        { class: "row" },
        h("input", {
          type: "checkbox",
          class: "doc-select",
          "aria-label": t("batch.select"),
          checked: selected.has(doc.id),
          onclick: (event: Event) => event.stopPropagation(),
          onchange: (event: Event) => {
            const box = event.target as HTMLInputElement;
            if (box.checked) selected.add(doc.id);
            else selected.delete(doc.id);
          },
        }),
        h("span", { class: "title", title: doc.title }, doc.title),
      ),
      h(
        "div",
        { class: "row badges" },
        h("span", { class: "meta" }, `${t("docs.pages", { count: doc.page_count })} · ${formatSize(doc.byte_size, locale())}`),
        ...markBadges(doc.id),
        ...syncBadges(doc.id),
      ),
    );
  }

  function renderList(): void {
    // Drawn again after each sync round: the reader keeps their place.
    const scrolledTo = docList?.element.scrollTop ?? 0;
    const selectAll = h("input", { type: "checkbox", id: "select-all", "aria-label": t("batch.selectAll") });
    selectAll.addEventListener("change", () => {
      for (const doc of shown) {
        if (selectAll.checked) selected.add(doc.id);
        else selected.delete(doc.id);
      }
      renderList();
    });
    const selectUnsigned = h("button", { type: "button", id: "select-unsigned" }, t("batch.selectUnsigned"));
    selectUnsigned.addEventListener("click", async () => {
      try {
        const unsigned = new Set(await api.awaitingSignature());
        selected.clear();
        for (const doc of shown) if (unsigned.has(doc.id)) selected.add(doc.id);
        renderList();
      } catch (e) {
        status.textContent = errorText(e);
      }
    });
    const selectResign = h("button", { type: "button", id: "select-resign", hidden: resign.size === 0 }, t("docs.selectResign"));
    selectResign.addEventListener("click", () => {
      selected.clear();
      for (const doc of shown) if (resign.has(doc.id)) selected.add(doc.id);
      renderList();
    });
    const batchOpen = h("button", { type: "button", id: "batch-open" }, t("batch.open"));
    batchOpen.addEventListener("click", () => {
      // What is signed is what the user sees selected: rows the filter hides are left out.
      const chosen = shown.filter((d) => selected.has(d.id));
      if (chosen.length === 0) {
        status.textContent = t("batch.nothingSelected");
        return;
      }
      openBatch(chosen);
    });
    shown = arrange(documents, sort, filter, { marks, syncStates });
    // A new order or filter starts the list from its top.
    const sortSelect = listChoice("list-sort", "list.sort", SORTS, sort, SORT_KEY, (chosen) => {
      sort = chosen;
      docList = null;
      renderList();
    });
    const filterSelect = listChoice("list-filter", "list.filter", FILTERS, filter, FILTER_KEY, (chosen) => {
      filter = chosen;
      docList = null;
      renderList();
    });
    const heading =
      shown.length === documents.length
        ? t("docs.heading", { count: documents.length })
        : t("docs.headingFiltered", { shown: shown.length, count: documents.length });
    listPane.replaceChildren(
      h("h2", {}, heading),
      h(
        "div",
        { class: "list-view" },
        h("label", { class: "inline" }, t("list.sort"), sortSelect),
        h("label", { class: "inline" }, t("list.filter"), filterSelect),
      ),
      h("div", { class: "list-actions" }, h("label", { class: "inline" }, selectAll, t("batch.selectAll")), selectUnsigned, selectResign, batchOpen),
      shown.length === 0
        ? h("p", { class: "muted" }, documents.length === 0 ? t("docs.empty") : t("docs.noneMatch"))
        : (docList = virtualList(shown.length, DOC_ROW_HEIGHT, docRow, { id: "doc-list", "aria-label": heading })).element,
    );
    if (shown.length === 0) docList = null;
    else if (docList) docList.element.scrollTop = scrolledTo;
    markFirstDrawn("outpost:list-ready");
  }

  function renderHits(hits: SearchHit[]): void {
    const items = hits.map((hit) =>
      h(
        "li",
        { "data-doc-id": hit.document_id, "data-page": hit.page_no, onclick: () => void openDocument(hit.document_id, hit.page_no) },
        h("span", { class: "title" }, hit.title),
        h("span", { class: "meta" }, t("search.page", { page: hit.page_no })),
        h("span", { class: "snippet" }, ...hit.snippet.map((part) => (part.highlighted ? h("mark", {}, part.text) : part.text))),
      ),
    );
    listPane.replaceChildren(
      h("h2", {}, t("search.heading", { count: hits.length })),
      hits.length === 0 ? h("p", { class: "muted" }, t("search.none")) : h("ul", { id: "search-results", class: "list" }, ...items),
    );
  }

  /** Draws the rows again after their badges changed; under a filter the list itself is drawn
   * again, since a row may no longer pass it (or another may now). */
  function redrawRows(): void {
    if (filter === "all") docList?.refresh();
    else renderList();
  }

  /** Reads the list's badges afresh (after signing or annotating), then `redraw`s. */
  function refreshMarks(redraw: () => void): void {
    void api
      .documentMarks()
      .then((fresh) => {
        marks = new Map(fresh.map((m) => [m.document_id, m]));
        redraw();
      })
      .catch((e) => {
        status.textContent = errorText(e);
      });
  }

  async function openDocument(id: string, page: number): Promise<void> {
    status.textContent = "";
    closeViewer?.();
    closeViewer = null;
    try {
      closeViewer = await openViewer({
        container: viewer,
        documentId: id,
        startPage: page,
        query: searchInput.value.trim(),
        platform,
        showError: (e) => {
          status.textContent = errorText(e);
        },
        refused: syncStates.get(id)?.refused ?? null,
        signAgain: syncStates.get(id)?.sign_again ?? false,
        onChanged: () => refreshMarks(redrawRows),
        onRefusalSettled: () => {
          void (async () => {
            await loadDocuments();
            renderList();
            await openDocument(id, page);
          })().catch((e) => {
            status.textContent = errorText(e);
          });
        },
      });
      // The engine has recorded the opening: the row says so (redrawn after the click that
      // opened it is over — the row that took the click stays in the page until then).
      const m = marks.get(id);
      if (m) m.opened = true;
      redrawRows();
    } catch (e) {
      status.textContent = errorText(e);
    }
  }

  searchForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    status.textContent = "";
    if (!searchInput.value.trim()) return renderList();
    try {
      const titleContains = titleFilter.value.trim();
      renderHits(await api.search({ query: searchInput.value, ...(titleContains ? { titleContains } : {}) }));
    } catch (e) {
      status.textContent = errorText(e);
    }
  });

  /** The batch panel for `chosen` (a new batch, or the rest of an interrupted one). */
  function openBatch(chosen: Pick<DocumentSummary, "id" | "title">[], resume?: { batchId: string; reason: string }): void {
    closeViewer?.();
    closeViewer = null;
    void showBatch(
      viewer,
      chosen,
      (e) => {
        status.textContent = errorText(e);
      },
      () => {
        // Signed now: the rows say so (and what waits for the server), and nothing stays
        // selected for another batch by mistake.
        selected.clear();
        void batches.refresh();
        void loadDocuments()
          .then(renderList)
          .catch((e) => {
            status.textContent = errorText(e);
          });
      },
      resume,
    );
  }
  const batches = unfinishedBatches(
    (batch) => {
      // Exactly what the batch has left, in its order (a document the list does not show now is
      // named by its id); the offer is hidden while its panel is open.
      const titles = new Map(documents.map((d) => [d.id, d.title]));
      batches.element.hidden = true;
      openBatch(
        batch.documents_left.map((id) => ({ id, title: titles.get(id) ?? id })),
        { batchId: batch.id, reason: batch.reason },
      );
    },
    (e) => {
      status.textContent = errorText(e);
    },
  );

  // After each finished sync round the list may have changed (documents arrived or were purged);
  // during a long one, each time it stored what arrived so far.
  let lastRounds = -1;
  let noticedRounds = -1;
  let lastStored = 0;
  const notices = purgeNotices((e) => {
    status.textContent = errorText(e);
  });
  const sync = syncIndicator(
    (state) => {
      // Only a vault that syncs can ask the server about trainees.
      if (traineesButton) traineesButton.hidden = false;
      const storedNow = state.transfer?.documents_stored ?? 0;
      if (state.running && storedNow > lastStored && !searchInput.value.trim()) {
        lastStored = storedNow;
        // The user may have searched meanwhile: the hits stay on the screen then.
        void loadDocuments().then(() => {
          if (!searchInput.value.trim()) renderList();
        });
        return;
      }
      lastStored = storedNow;
      if (state.running) return;
      if (state.attempts !== noticedRounds) {
        // A round ended: documents it took back are said (also while search hits are shown).
        noticedRounds = state.attempts;
        void notices.refresh();
      }
      if (state.attempts === lastRounds || searchInput.value.trim()) return;
      lastRounds = state.attempts;
      void loadDocuments().then(renderList);
    },
    () =>
      showPanel((showError) => {
        void api.appInfo().then((info) =>
          showConnect(
            viewer,
            info.unlocked_user ?? "",
            showError,
            async () => {
              status.textContent = "";
              // What the server said of the user (a trainee's role) shapes the screen.
              const role = (await api.appInfo()).server_role;
              if (role === "trainee") await showMain();
            },
            false,
            info.server,
          ),
        );
      }),
  );
  root.replaceChildren(
    h(
      "header",
      { class: "bar" },
      h("strong", {}, t("app.title")),
      searchForm,
      languageSwitch(() => void showMain()),
      autolockSetting,
      settingsButton,
      keysButton,
      traineesButton,
      tutorialButton,
      signOutButton,
      lockButton,
      leaveButton,
    ),
    ...(sandbox ? [h("p", { id: "training-banner", role: "note" }, t("tutorial.banner"))] : []),
    sync.element,
    notices.element,
    batches.element,
    status,
    h("main", { class: "split" }, listPane, viewer),
    ...(tutorial ? [tutorial.element] : []),
    activity,
  );
  // Documents taken back by rounds before this screen (another session, before a restart), and
  // batches the app stopped in.
  void notices.refresh();
  void batches.refresh();
  stopListening?.();
  const unlisten = await onIntake(async (notice) => {
    activity.textContent = intakeText(notice);
    intakeLog.unshift(`${new Date().toLocaleTimeString()} — ${intakeText(notice)}`);
    intakeLog.splice(INTAKE_LOG_LENGTH);
    if (notice.kind === "event" && notice.event.kind === "imported" && !searchInput.value.trim()) {
      await loadDocuments();
      renderList();
    }
  });
  // The server revoked this device and its vault was erased: back to the unlock screen.
  const unlistenWiped = await onVaultWiped(() => {
    closeViewer?.();
    closeViewer = null;
    void showUnlock(t("sync.wiped"));
  });
  stopListening = () => {
    tutorial?.stop();
    unlisten();
    unlistenWiped();
    sync.stop();
    stopAutolock();
  };
  try {
    const info = await api.appInfo();
    if (signOutButton) signOutButton.hidden = info.server === null;
    if (trainee && tutorialButton) {
      const start = h("button", { id: "trainee-start-tutorial", type: "button" }, t("tutorial.start"));
      start.addEventListener("click", () => tutorialButton.click());
      viewer.replaceChildren(h("section", { id: "trainee-notice", class: "card wide" }, h("p", {}, t("trainee.notice")), start));
    }
    if (info.inbox_error) activity.textContent = t("inbox.error", { message: info.inbox_error.message });
    else if (info.inbox_dir) activity.textContent = t("inbox.watching", { path: info.inbox_dir });
    await loadDocuments();
    renderList();
  } catch (e) {
    status.textContent = errorText(e);
    if (asCommandError(e).code === "locked") await showUnlock();
  }
}

setLocale(initialLocale(localStorage.getItem("outpost.locale"), navigator.language));
document.documentElement.lang = locale();
document.title = t("app.title");
showUnlock().catch((e) => {
  root.textContent = errorText(e);
});
