// The tutorial's panel: the lessons, the step in hand explained and pointed at in the window, and
// progress as the engine judges it (the panel asks the engine; it never decides a step is done).
import { api, type LessonProgress, type TutorialSummary } from "./api";
import { h } from "./dom";
import { isMessageKey, t } from "./i18n";

/** Where each step happens in the window: the element the panel points at. */
export const STEP_TARGETS: Record<string, string> = {
  open_document: "#doc-list li[data-doc-id]",
  go_to_later_page: "#thumbnails",
  search_with_hits: "#search-input",
  open_search_hit: "#search-results li",
  add_highlight: "#markup-highlight",
  add_note: '[data-tool="note"]',
  sign_document: "#sign-open",
  sign_three_in_batch: "#batch-open",
  lock: "#lock",
  unlock: "#start-tutorial",
  open_signed_document: "#doc-list li[data-doc-id]",
  read_validation: "#signature-list",
  go_offline: "#practice-toggle",
  work_offline: "#doc-list li[data-doc-id]",
  sign_offline: "#sign-open",
  come_online: "#practice-toggle",
  sync_back: "#sync-now",
  sign_again_on_new_head: "#sign-open",
};

/** Steps of the lessons that practise sync with the practice server. */
const STEP_NEEDS_SERVER = ["go_offline", "come_online"];

/** Where the lesson in hand is remembered between screens (which lesson the panel shows). */
const ACTIVE_LESSON = "outpost.tutorial.lesson";
/** How often the panel asks the engine whether the step in hand is done. */
const CHECK_EVERY_MS = 1200;

/** A lesson's title from the catalogue; an id it does not know (a newer Outpost's) as it is. */
export function lessonTitle(id: string): string {
  const key = `lesson.${id}`;
  return isMessageKey(key) ? t(key) : id;
}

/** A step's explanation from the catalogue; an id it does not know as it is. */
function stepText(id: string): string {
  const key = `step.${id}`;
  return isMessageKey(key) ? t(key) : id;
}

/** The step in hand: the first one not done (-1 when every step is). */
export function currentStep(lesson: LessonProgress): number {
  return lesson.steps.findIndex((s) => !s.done);
}

/** The lesson the panel shows, remembered in `storage`. */
export function activeLesson(storage: Storage): string | null {
  return storage.getItem(ACTIVE_LESSON);
}

/** Points at `selector`'s first element (and at nothing else). */
export function pointAt(doc: Document, selector: string | null): void {
  for (const old of Array.from(doc.querySelectorAll(".tutorial-target"))) {
    if (!selector || !old.matches(selector)) old.classList.remove("tutorial-target");
  }
  if (!selector) return;
  doc.querySelector(selector)?.classList.add("tutorial-target");
}

function summaryText(s: TutorialSummary): string {
  if (s.complete) return t("tutorial.allDone");
  return t("tutorial.summary", {
    done: s.lessons_completed,
    total: s.lessons_available,
    steps: s.steps_done,
    stepsTotal: s.steps_total,
  });
}

/** The panel, and a function that stops its checks. */
export function tutorialPanel(showError: (e: unknown) => void): { element: HTMLElement; stop: () => void } {
  const summary = h("p", { id: "tutorial-summary", class: "muted" });
  const step = h("div", { id: "tutorial-step", role: "status", "aria-live": "polite" });
  const list = h("ul", { id: "tutorial-lessons" });
  const serverState = h("span", { id: "practice-state" });
  const serverToggle = h("button", { type: "button", id: "practice-toggle" }, t("practice.goOnline"));
  const server = h("p", { id: "practice-server" }, serverState, " ", serverToggle);
  let online = false;
  function drawServer(): void {
    serverState.textContent = online ? t("practice.online") : t("practice.offline");
    serverToggle.textContent = online ? t("practice.goOffline") : t("practice.goOnline");
    server.dataset.online = String(online);
  }
  serverToggle.addEventListener("click", () => {
    serverToggle.disabled = true;
    void api
      .setPracticeServerOnline(!online)
      .then((now) => {
        online = now;
        drawServer();
      })
      .catch(showError)
      .finally(() => {
        serverToggle.disabled = false;
      });
  });
  const body = h("div", { class: "tutorial-body" }, summary, server, step, list);
  const toggle = h("button", { type: "button", id: "tutorial-toggle" }, t("tutorial.hide"));
  toggle.addEventListener("click", () => {
    body.hidden = !body.hidden;
    toggle.textContent = body.hidden ? t("tutorial.show") : t("tutorial.hide");
  });
  const element = h(
    "aside",
    { id: "tutorial-panel", "aria-label": t("tutorial.heading") },
    h("div", { class: "tutorial-head" }, h("strong", {}, t("tutorial.heading")), toggle),
    body,
  );
  let lessons: LessonProgress[] = [];
  let stopped = false;

  function draw(justCompleted: string | null): void {
    const active = activeLesson(localStorage);
    const lesson = lessons.find((l) => l.id === active) ?? null;
    if (lesson && !lesson.completed) {
      const index = currentStep(lesson);
      const current = lesson.steps[index];
      step.replaceChildren(
        h("strong", {}, lessonTitle(lesson.id)),
        h("p", { class: "muted" }, t("tutorial.stepOf", { step: index + 1, count: lesson.steps.length })),
        ...(current ? [h("p", { "data-step": current.id }, stepText(current.id))] : []),
      );
      pointAt(document, current ? STEP_TARGETS[current.id] ?? null : null);
    } else {
      step.replaceChildren(...(justCompleted ? [h("p", { class: "done" }, t("tutorial.lessonDone"))] : []));
      pointAt(document, null);
    }
    list.replaceChildren(
      ...lessons.map((l) => {
        const begin = h(
          "button",
          { type: "button", class: "lesson-begin", disabled: !l.available, title: l.available ? "" : t("tutorial.needsServer") },
          l.started ? t("tutorial.again") : t("tutorial.begin"),
        );
        begin.addEventListener("click", () => {
          void api
            .startLesson(l.id)
            .then(async () => {
              localStorage.setItem(ACTIVE_LESSON, l.id);
              await refresh(null);
            })
            .catch(showError);
        });
        const done = l.steps.filter((s) => s.done).length;
        return h(
          "li",
          { "data-lesson": l.id, class: l.id === active ? "active" : "", "data-completed": String(l.completed) },
          h("span", { class: "title" }, lessonTitle(l.id)),
          h(
            "span",
            { class: "meta" },
            !l.available ? t("tutorial.needsServer") : l.completed ? t("tutorial.done") : `${done}/${l.steps.length}`,
          ),
          begin,
        );
      }),
    );
  }

  async function refresh(justCompleted: string | null): Promise<void> {
    const [all, totals, serverOnline] = await Promise.all([
      api.lessons(),
      api.tutorialSummary(),
      api.practiceServerOnline(),
    ]);
    if (stopped) return;
    lessons = all;
    online = serverOnline;
    drawServer();
    server.hidden = !all.some((l) => l.available && STEP_NEEDS_SERVER.some((id) => l.steps.some((s) => s.id === id)));
    summary.textContent = summaryText(totals);
    draw(justCompleted);
  }

  async function check(): Promise<void> {
    const active = activeLesson(localStorage);
    const lesson = lessons.find((l) => l.id === active);
    if (!active || !lesson || lesson.completed || !lesson.started) return;
    const progress = await api.checkLesson(active);
    if (stopped) return;
    if (progress.completed) {
      localStorage.removeItem(ACTIVE_LESSON);
      await refresh(active);
    } else if (JSON.stringify(progress) !== JSON.stringify(lesson)) {
      lessons = lessons.map((l) => (l.id === progress.id ? progress : l));
      draw(null);
    } else {
      // Nothing new: only point at the step's element again (the window may have drawn it afresh).
      const current = progress.steps[currentStep(progress)];
      pointAt(document, current ? STEP_TARGETS[current.id] ?? null : null);
    }
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      try {
        await check();
      } catch (e) {
        if (stopped) return;
        showError(e);
      }
      await new Promise((resolve) => setTimeout(resolve, CHECK_EVERY_MS));
    }
  }

  void refresh(null)
    .catch(showError)
    .then(() => loop());
  return {
    element,
    stop: () => {
      stopped = true;
      pointAt(document, null);
    },
  };
}
