// An engine error as the user reads it: its code picks the sentence from the catalogue; the
// engine's own words fill in the details where the sentence has room for them.
import { asCommandError } from "./api";
import { isMessageKey, t } from "./i18n";

/** The user's sentence for `error` (a command's error, or anything thrown). */
export function errorText(error: unknown): string {
  const e = asCommandError(error);
  const key = `error.${e.code}`;
  return isMessageKey(key) ? t(key, { message: e.message }) : t("error.generic", { message: e.message });
}
