// Typed bindings to the app's commands. The shapes mirror the Rust types serialised by serde.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export interface AppInfo {
  users: string[];
  suggested_user: string | null;
  unlocked_user: string | null;
  inbox_dir: string | null;
  inbox_error: CommandError | null;
}

export interface DocumentSummary {
  id: string;
  sha256: string;
  title: string;
  page_count: number;
  byte_size: number;
  source_name: string;
  imported_at_ms: number;
}

export interface SnippetPart {
  text: string;
  highlighted: boolean;
}

export interface SearchHit {
  document_id: string;
  title: string;
  page_no: number;
  snippet: SnippetPart[];
  score: number;
}

export interface SearchArgs {
  query: string;
  titleContains?: string;
  importedFromMs?: number;
  importedBeforeMs?: number;
}

/** What happened to one file in the watched inbox (mirrors the engine's IntakeEvent). */
export type IntakeEvent =
  | { kind: "imported"; source: string; document: DocumentSummary }
  | { kind: "duplicate"; source: string; document: DocumentSummary }
  | { kind: "rejected"; source: string; reason: string; moved_to: string }
  | { kind: "recovered"; source: string }
  | { kind: "deferred"; source: string; error: string };

/** The `intake` event. */
export type IntakeNotice =
  | { kind: "event"; event: IntakeEvent }
  | { kind: "error"; code: string; message: string };

export function onIntake(handler: (notice: IntakeNotice) => void): Promise<UnlistenFn> {
  return listen<IntakeNotice>("intake", (e) => handler(e.payload));
}

/** An error from a command: `code` is stable, `message` is for people. */
export interface CommandError {
  code: string;
  message: string;
}

export function isCommandError(value: unknown): value is CommandError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { code?: unknown }).code === "string" &&
    typeof (value as { message?: unknown }).message === "string"
  );
}

/** Any thrown value as a CommandError. */
export function asCommandError(value: unknown): CommandError {
  if (isCommandError(value)) return value;
  return { code: "internal", message: String(value) };
}

export const api = {
  appInfo: () => invoke<AppInfo>("app_info"),
  unlock: (user: string, password: string) => invoke<string>("unlock", { user, password }),
  lock: () => invoke<void>("lock"),
  listDocuments: () => invoke<DocumentSummary[]>("list_documents"),
  openDocument: (id: string) => invoke<DocumentSummary>("open_document", { id }),
  search: (args: SearchArgs) => invoke<SearchHit[]>("search", { args }),
};

/** The address of a rendered page image (served by the app's `outpost-page` scheme). */
export function pageImageUrl(documentId: string, page: number, width: number, platform: string): string {
  const path = `${encodeURIComponent(documentId)}/${page}?width=${Math.round(width)}`;
  // WebKitGTK and macOS use scheme://localhost/; WebView2 on Windows uses http://scheme.localhost/.
  return platform.toLowerCase().includes("win")
    ? `http://outpost-page.localhost/${path}`
    : `outpost-page://localhost/${path}`;
}
