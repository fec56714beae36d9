import { describe, expect, it } from "vitest";
import { catalogues, initialLocale, setLocale, t, type MessageKey } from "./i18n";

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("message catalogue", () => {
  it("has every message in Russian and English with the same placeholders", () => {
    const keys = Object.keys(catalogues.en) as MessageKey[];
    expect(Object.keys(catalogues.ru).sort()).toEqual([...keys].sort());
    for (const key of keys) {
      expect(catalogues.ru[key].trim(), key).not.toBe("");
      expect(placeholders(catalogues.ru[key]), key).toEqual(placeholders(catalogues.en[key]));
    }
  });

  it("Russian messages are actually Russian", () => {
    const cyrillic = /[А-Яа-яЁё]/;
    const untranslated = (Object.keys(catalogues.en) as MessageKey[]).filter(
      (key) => !cyrillic.test(catalogues.ru[key]),
    );
    expect(untranslated).toEqual([]);
  });

  it("fills placeholders and switches language", () => {
    setLocale("en");
    expect(t("docs.heading", { count: 6 })).toBe("Documents (6)");
    setLocale("ru");
    expect(t("docs.heading", { count: 6 })).toBe("Документы (6)");
    expect(t("search.page", {})).toBe("стр. {page}");
    setLocale("en");
  });

  it("starts from the saved choice, else the system language", () => {
    expect(initialLocale("en", "ru-RU")).toBe("en");
    expect(initialLocale(null, "ru-RU")).toBe("ru");
    expect(initialLocale(null, "de-DE")).toBe("en");
    expect(initialLocale("xx", "ru")).toBe("ru");
  });
});
