// Every string the UI shows comes from this catalogue, in Russian and English.

export type Locale = "en" | "ru";

const en = {
  "app.title": "Outpost",
  "unlock.heading": "Unlock your vault",
  "unlock.user": "User",
  "unlock.password": "Vault password",
  "unlock.submit": "Unlock",
  "unlock.working": "Unlocking…",
  "unlock.noUsers": "There is no vault on this workstation yet.",
  "toolbar.search": "Search documents",
  "toolbar.searchButton": "Search",
  "toolbar.titleFilter": "Title contains",
  "toolbar.clear": "Clear",
  "toolbar.lock": "Lock",
  "toolbar.language": "Language",
  "docs.heading": "Documents ({count})",
  "docs.empty": "No documents in this vault.",
  "docs.pages": "{count} p.",
  "search.heading": "Search results ({count})",
  "search.none": "Nothing found.",
  "search.page": "page {page}",
  "viewer.placeholder": "Choose a document to view it.",
  "viewer.pageAlt": "Page {page} of {count}",
  "viewer.imported": "Imported {date} from {source}",
  "viewer.colour": "Colour",
  "viewer.textPlaceholder": "Text for a note or free text",
  "viewer.copy": "Copy",
  "viewer.copied": "The selected text was copied.",
  "viewer.undo": "Undo",
  "viewer.redo": "Redo",
  "viewer.fitWidth": "Fit width",
  "viewer.export": "Save a copy…",
  "viewer.exportPath": "Save a copy with annotations to",
  "viewer.exportSave": "Save",
  "viewer.exported": "Saved a copy with {count} annotations to {path}",
  "viewer.created": "Annotation added.",
  "viewer.deleted": "Annotation deleted.",
  "viewer.undone": "Undone.",
  "viewer.redone": "Redone.",
  "viewer.needText": "Type the text first, then draw the box.",
  "tool.select": "Select text",
  "tool.note": "Note",
  "tool.free_text": "Text box",
  "tool.rectangle": "Rectangle",
  "tool.ellipse": "Ellipse",
  "tool.ink": "Pen",
  "kind.highlight": "Highlight",
  "kind.underline": "Underline",
  "kind.strike_out": "Strike out",
  "kind.note": "Note",
  "kind.free_text": "Text box",
  "kind.ink": "Pen",
  "kind.rectangle": "Rectangle",
  "kind.ellipse": "Ellipse",
  "panel.heading": "Annotations",
  "panel.empty": "No annotations yet.",
  "panel.delete": "Delete",
  "panel.edit": "Edit text",
  "panel.save": "Save",
  "viewer.edited": "Annotation changed.",
  "viewer.thumbnails": "Pages",
  "error.nothing_to_undo": "There is nothing to undo in this document.",
  "error.nothing_to_redo": "There is nothing to redo in this document.",
  "error.undo_outdated": "That change cannot be undone: the annotation was changed since.",
  "error.annotation_changed": "The annotation was changed elsewhere. The list was reloaded; try again.",
  "error.export_target_exists": "A file with that name already exists. Choose another name.",
  "error.invalid_annotation": "The annotation cannot be saved: its shape is not valid.",
  "inbox.watching": "Inbox folder: {path}",
  "inbox.imported": "Imported from the inbox: {source}",
  "inbox.duplicate": "{source} is already in the vault; removed from the inbox",
  "inbox.rejected": "{source} was rejected: {reason}",
  "inbox.recovered": "Finished taking in {source} after an interruption",
  "inbox.deferred": "{source} will be tried again: {error}",
  "inbox.error": "The inbox cannot be read: {message}",
  "error.wrong_password": "Wrong password. The vault was not changed.",
  "error.locked": "The vault is locked. Unlock it again.",
  "error.generic": "Something went wrong: {message}",
} as const;

export type MessageKey = keyof typeof en;

const ru: Record<MessageKey, string> = {
  "app.title": "Аванпост",
  "unlock.heading": "Разблокировка хранилища",
  "unlock.user": "Пользователь",
  "unlock.password": "Пароль хранилища",
  "unlock.submit": "Открыть",
  "unlock.working": "Открываю…",
  "unlock.noUsers": "На этой рабочей станции ещё нет хранилищ.",
  "toolbar.search": "Поиск по документам",
  "toolbar.searchButton": "Найти",
  "toolbar.titleFilter": "Название содержит",
  "toolbar.clear": "Сбросить",
  "toolbar.lock": "Заблокировать",
  "toolbar.language": "Язык",
  "docs.heading": "Документы ({count})",
  "docs.empty": "В хранилище нет документов.",
  "docs.pages": "{count} стр.",
  "search.heading": "Результаты поиска ({count})",
  "search.none": "Ничего не найдено.",
  "search.page": "стр. {page}",
  "viewer.placeholder": "Выберите документ для просмотра.",
  "viewer.pageAlt": "Страница {page} из {count}",
  "viewer.imported": "Импортирован {date} из {source}",
  "viewer.colour": "Цвет",
  "viewer.textPlaceholder": "Текст заметки или надписи",
  "viewer.copy": "Копировать",
  "viewer.copied": "Выделенный текст скопирован.",
  "viewer.undo": "Отменить",
  "viewer.redo": "Повторить",
  "viewer.fitWidth": "По ширине",
  "viewer.export": "Сохранить копию…",
  "viewer.exportPath": "Сохранить копию с пометками в",
  "viewer.exportSave": "Сохранить",
  "viewer.exported": "Копия с пометками ({count}) сохранена: {path}",
  "viewer.created": "Пометка добавлена.",
  "viewer.deleted": "Пометка удалена.",
  "viewer.undone": "Отменено.",
  "viewer.redone": "Повторено.",
  "viewer.needText": "Сначала введите текст, затем нарисуйте рамку.",
  "tool.select": "Выделить текст",
  "tool.note": "Заметка",
  "tool.free_text": "Надпись",
  "tool.rectangle": "Прямоугольник",
  "tool.ellipse": "Эллипс",
  "tool.ink": "Перо",
  "kind.highlight": "Выделение",
  "kind.underline": "Подчёркивание",
  "kind.strike_out": "Зачёркивание",
  "kind.note": "Заметка",
  "kind.free_text": "Надпись",
  "kind.ink": "Перо",
  "kind.rectangle": "Прямоугольник",
  "kind.ellipse": "Эллипс",
  "panel.heading": "Пометки",
  "panel.empty": "Пометок пока нет.",
  "panel.delete": "Удалить",
  "panel.edit": "Изменить текст",
  "panel.save": "Сохранить",
  "viewer.edited": "Пометка изменена.",
  "viewer.thumbnails": "Страницы",
  "error.nothing_to_undo": "В этом документе нечего отменять.",
  "error.nothing_to_redo": "В этом документе нечего повторять.",
  "error.undo_outdated": "Это действие нельзя отменить: пометка с тех пор изменилась.",
  "error.annotation_changed": "Пометку изменили в другом месте. Список обновлён; повторите.",
  "error.export_target_exists": "Файл с таким именем уже есть. Выберите другое имя.",
  "error.invalid_annotation": "Пометку нельзя сохранить: её форма недопустима.",
  "inbox.watching": "Папка входящих: {path}",
  "inbox.imported": "Импортирован из входящих: {source}",
  "inbox.duplicate": "{source} уже есть в хранилище; удалён из входящих",
  "inbox.rejected": "{source} отклонён: {reason}",
  "inbox.recovered": "Приём {source} завершён после прерывания",
  "inbox.deferred": "{source} будет обработан повторно: {error}",
  "inbox.error": "Папка входящих недоступна: {message}",
  "error.wrong_password": "Неверный пароль. Хранилище не изменено.",
  "error.locked": "Хранилище заблокировано. Откройте его снова.",
  "error.generic": "Произошла ошибка: {message}",
};

export const catalogues: Record<Locale, Record<MessageKey, string>> = { en, ru };

let current: Locale = "en";

/** The locale to start with: the saved choice, else the system's language. */
export function initialLocale(saved: string | null, systemLanguage: string): Locale {
  if (saved === "en" || saved === "ru") return saved;
  return systemLanguage.toLowerCase().startsWith("ru") ? "ru" : "en";
}

export function setLocale(locale: Locale): void {
  current = locale;
}

export function locale(): Locale {
  return current;
}

/** The message for `key` in the current locale, with `{name}` placeholders filled in. */
export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  const template = catalogues[current][key];
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

/** Whether `key` names a message (used to map error codes to messages). */
export function isMessageKey(key: string): key is MessageKey {
  return key in en;
}
