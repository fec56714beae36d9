// A supervisor's view of their trainees' tutorial progress, as the server holds it.
// Presentation only: the server decides who may see whom.
import { api } from "./api";
import { h } from "./dom";
import { formatDate } from "./format";
import { locale, t } from "./i18n";
import { lessonTitle } from "./tutorial";

/** Shows in `container` the tutorial progress of the trainees the user oversees. */
export async function showTrainees(container: HTMLElement, showError: (e: unknown) => void): Promise<void> {
  const body = h("div", { id: "trainees-body" }, h("p", { class: "muted" }, t("trainees.loading")));
  container.replaceChildren(h("section", { id: "trainees", class: "panel" }, h("h2", {}, t("trainees.title")), body));
  try {
    const { trainees } = await api.trainingOverview();
    if (trainees.length === 0) {
      body.replaceChildren(h("p", { class: "muted" }, t("trainees.none")));
      return;
    }
    body.replaceChildren(
      h(
        "ul",
        { id: "trainee-list", class: "list" },
        ...trainees.map((trainee) =>
          h(
            "li",
            { "data-user": trainee.username },
            h("span", { class: "title" }, `${trainee.display_name} (${trainee.username})`),
            h(
              "span",
              { class: "meta" },
              t("trainees.progress", {
                done: trainee.progress.lessons_completed,
                total: trainee.progress.lessons_available,
                date: formatDate(trainee.received_at_ms, locale()),
              }),
            ),
            h(
              "ul",
              { class: "lessons" },
              ...trainee.progress.lessons.map((lesson) =>
                h(
                  "li",
                  { "data-lesson": lesson.lesson, "data-completed": String(lesson.completed) },
                  `${lessonTitle(lesson.lesson)} — ${lesson.steps_done}/${lesson.steps_total}`,
                ),
              ),
            ),
          ),
        ),
      ),
    );
  } catch (e) {
    body.replaceChildren();
    showError(e);
  }
}
