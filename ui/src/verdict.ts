// A signature's verdict as the user reads it: the status, and why it is not valid — told from
// the engine's reason code in the user's language (the engine's English words only where the
// code says the signature could not be read, as the detail).
import type { SignatureReport } from "./api";
import { t } from "./i18n";

/** The verdict line for `report`. */
export function signatureVerdict(report: Pick<SignatureReport, "status" | "status_reason">): string {
  const s = report.status;
  if (s.status !== "invalid" && s.status !== "untrusted") return t(`status.${s.status}`);
  const reason = report.status_reason ? t(`status.reason.${report.status_reason}`, { detail: s.reason }) : s.reason;
  return t(`status.${s.status}`, { reason });
}
