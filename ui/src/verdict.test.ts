import { describe, expect, it } from "vitest";

import { setLocale } from "./i18n";
import { signatureVerdict } from "./verdict";

describe("a signature's verdict", () => {
  it("says why a signature is not valid in the user's language, from the engine's code", () => {
    const changed = {
      status: { status: "invalid" as const, reason: "the signed bytes were changed" },
      status_reason: "bytes_changed" as const,
    };
    setLocale("ru");
    expect(signatureVerdict(changed)).toBe("Недействительна: подписанные данные изменены");
    expect(
      signatureVerdict({ status: { status: "untrusted", reason: "x" }, status_reason: "not_trusted" }),
    ).toBe("Подписант не доверенный: сертификат не ведёт к корню, которому доверяет это рабочее место");
    // An unreadable signature keeps the engine's words as the detail.
    expect(
      signatureVerdict({ status: { status: "invalid", reason: "the signature has no contents" }, status_reason: "unreadable" }),
    ).toBe("Недействительна: подпись невозможно прочитать (the signature has no contents)");
    setLocale("en");
    expect(signatureVerdict(changed)).toBe("Invalid: the signed bytes were changed");
    expect(signatureVerdict({ status: { status: "valid_later_annotated" }, status_reason: null })).toBe(
      "Valid; annotated later",
    );
    // Without a code (an older engine), the engine's words are shown.
    expect(signatureVerdict({ status: { status: "invalid", reason: "odd" }, status_reason: null })).toBe("Invalid: odd");
  });
});
