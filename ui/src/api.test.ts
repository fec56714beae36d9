import { describe, expect, it } from "vitest";
import { asCommandError, isCommandError, pageImageUrl } from "./api";
import { formatPdfDate, formatSize, pdfDateMs } from "./format";

describe("command errors", () => {
  it("keeps the code and message the engine sent", () => {
    const e = { code: "wrong_password", message: "wrong password for the vault of 'demo'" };
    expect(isCommandError(e)).toBe(true);
    expect(asCommandError(e)).toEqual(e);
  });

  it("wraps anything else as an internal error", () => {
    expect(isCommandError("boom")).toBe(false);
    expect(asCommandError("boom")).toEqual({ code: "internal", message: "boom" });
  });
});

describe("page images", () => {
  it("uses the custom scheme on Linux and the localhost form on Windows", () => {
    expect(pageImageUrl("a b", 3, 800.4, "Mozilla/5.0 (X11; Linux x86_64)")).toBe(
      "outpost-page://localhost/a%20b/3?width=800",
    );
    expect(pageImageUrl("id", 1, 640, "Mozilla/5.0 (Windows NT 10.0)")).toBe(
      "http://outpost-page.localhost/id/1?width=640",
    );
  });
});

describe("PDF dates", () => {
  it("read UTC and offset forms, and leave what they cannot read", () => {
    expect(pdfDateMs("D:20261202033406Z")).toBe(Date.UTC(2026, 11, 2, 3, 34, 6));
    expect(pdfDateMs("D:20261202063406+03'00'")).toBe(Date.UTC(2026, 11, 2, 3, 34, 6));
    expect(pdfDateMs("D:20261201223406-05'00'")).toBe(Date.UTC(2026, 11, 2, 3, 34, 6));
    expect(pdfDateMs("yesterday")).toBeNull();
    expect(formatPdfDate("yesterday", "en")).toBe("yesterday");
  });
});

describe("sizes", () => {
  it("formats in both languages", () => {
    expect(formatSize(512, "en")).toBe("512 B");
    expect(formatSize(1536, "en")).toBe("1.5 KB");
    expect(formatSize(5 * 1024 * 1024, "ru")).toBe("5.0 МБ");
  });
});
