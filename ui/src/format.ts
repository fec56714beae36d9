// Formatting for display; pure functions so they are tested without a window.
import type { Locale } from "./i18n";

export function formatDate(ms: number, locale: Locale): string {
  return new Intl.DateTimeFormat(locale === "ru" ? "ru-RU" : "en-GB", {
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  }).format(new Date(ms));
}

/** A PDF date (`D:YYYYMMDDHHmmSS` with `Z` or `+HH'mm'`) as milliseconds since the epoch, or null. */
export function pdfDateMs(date: string): number | null {
  const m = /^D:(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:([Zz+-])(\d{2})?'?(\d{2})?'?)?$/.exec(date.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, sign, oh, om] = m;
  const utc = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  const offset = sign === "+" || sign === "-" ? (Number(oh ?? 0) * 60 + Number(om ?? 0)) * 60_000 : 0;
  return sign === "-" ? utc + offset : utc - offset;
}

/** A PDF date for people, in the locale's form; as written when it cannot be read. */
export function formatPdfDate(date: string, locale: Locale): string {
  const ms = pdfDateMs(date);
  return ms === null ? date : formatDate(ms, locale);
}

export function formatSize(bytes: number, locale: Locale): string {
  const units = locale === "ru" ? ["Б", "КБ", "МБ", "ГБ"] : ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}
