// Typed bindings to the app's commands. The shapes mirror the Rust types serialised by serde.
import { Channel, invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export interface AppInfo {
  users: string[];
  suggested_user: string | null;
  unlocked_user: string | null;
  inbox_dir: string | null;
  inbox_error: CommandError | null;
  /** Whether the unlocked session is the tutorial's practice sandbox. */
  sandbox: boolean;
  /** The user's role on the server, when the vault syncs. */
  server_role: string | null;
  /** The server the unlocked vault syncs with (public: address and pinned CA). */
  server: { address: string; ca_pem: string } | null;
}

/** A lesson of the tutorial (mirrors the engine's LessonProgress). */
export interface LessonProgress {
  id: string;
  steps: { id: string; done: boolean }[];
  started: boolean;
  completed: boolean;
  /** Lessons that practise sync need the practice server, which the tutorial does not have yet. */
  available: boolean;
}

/** What the server keeps of a trainee's tutorial progress on one device. */
export interface TrainingProgress {
  sequence: number;
  lessons: { lesson: string; steps_done: number; steps_total: number; completed: boolean }[];
  lessons_completed: number;
  lessons_available: number;
}

export interface TraineeProgress {
  username: string;
  display_name: string;
  role: string;
  device_id: string;
  received_at_ms: number;
  progress: TrainingProgress;
}

export interface TutorialSummary {
  lessons_completed: number;
  lessons_available: number;
  steps_done: number;
  steps_total: number;
  complete: boolean;
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

/** A document opened for viewing: its summary and each page's size as seen, in points. */
export interface DocumentView {
  document: DocumentSummary;
  page_sizes: [number, number][];
}

/** A rectangle in view space (points of the page as seen, origin top-left). */
export interface ViewRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Point {
  x: number;
  y: number;
}

export interface ViewWord {
  text: string;
  line: number;
  rect: ViewRect;
}

export interface PageTextView {
  page: number;
  width: number;
  height: number;
  words: ViewWord[];
}

export type AnnotationKind =
  | "highlight"
  | "underline"
  | "strike_out"
  | "note"
  | "free_text"
  | "ink"
  | "rectangle"
  | "ellipse";

/** An annotation as the overlay draws it (mirrors the engine's ViewAnnotation). */
export interface ViewAnnotation {
  id: string;
  revision: number;
  kind: AnnotationKind;
  page: number;
  colour: string;
  contents: string;
  author: string;
  modified_ms: number;
  line_width: number;
  rects: ViewRect[];
  strokes: Point[][];
}

export type ViewShape =
  | { shape: "words"; first: number; last: number }
  | { shape: "icon"; at: Point }
  | { shape: "box"; rect: ViewRect }
  | { shape: "strokes"; strokes: Point[][] };

/** A new annotation in view space; style fields are optional (the engine has defaults). */
export interface ViewDraft {
  kind: AnnotationKind;
  page: number;
  shape: ViewShape;
  colour?: string;
  contents?: string;
  line_width?: number;
  font_size?: number;
}

export interface ExportReport {
  path: string;
  byte_size: number;
  sha256: string;
  annotations: number;
}

export type KeyAlgorithm = "ecdsa_p256" | "rsa3072";

/** A signing key in the vault (mirrors the engine's SigningKeyInfo). */
export interface SigningKeyInfo {
  id: string;
  label: string;
  algorithm: string;
  request_pem: string;
  subject: string | null;
  issuer: string | null;
  serial: string | null;
  not_before_ms: number | null;
  not_after_ms: number | null;
  /** The certificate followed by its chain (PEM), once imported. */
  certificate_pem: string | null;
  /** Its certificate request waits to be sent to the organisation's CA with the next sync. */
  certificate_requested: boolean;
  /** Why the organisation's CA refused its certificate request, if it did. */
  certificate_refusal: string | null;
}

export interface SignOptions {
  key_id: string;
  reason: string;
  page: number;
  mark: ViewRect | null;
  certify: number | null;
}

export interface SignOutcome {
  revision: number;
  sha256_before: string;
  sha256_after: string;
  burned_annotations: number;
}

export type SignatureStatus =
  | { status: "valid" }
  | { status: "valid_later_signed" }
  | { status: "valid_later_annotated" }
  | { status: "invalid"; reason: string }
  | { status: "untrusted"; reason: string }
  | { status: "revoked"; reason: string };

/** Whether the signer's certificate was revoked, from the revocation lists at hand (dates are PDF dates, UTC). */
export type Revocation =
  | { state: "unknown" }
  | { state: "not_revoked"; checked_at: string }
  | { state: "revoked_later"; revoked_at: string; proven_at: string }
  | { state: "revoked"; revoked_at: string };

/** The connect screen's request: the server, its CA to pin, and the sign-in. */
export interface ConnectRequest {
  address: string;
  ca_pem: string;
  username: string;
  password: string;
  code: string;
  device_name: string;
}

/** What the first-run screen sends: the server sign-in and the new vault's password. */
export interface SetupRequest extends ConnectRequest {
  vault_password: string;
}

/** What the list shows about a document besides its metadata. */
export interface DocumentMarks {
  document_id: string;
  /** Opened here at least once (else it is new). */
  opened: boolean;
  /** Its annotations, deleted ones not counted. */
  annotations: number;
  /** Signed here by this user. */
  signed: boolean;
  /** Not signed yet while the user has a certified key: it awaits their signature. */
  awaiting_signature: boolean;
}

/** A server document's standing in one word: everything sent, changes waiting, to sign again
 * after a conflict, refused by the server, or purged here (until its notice is dismissed). */
export type DocumentStanding = "synced" | "pending" | "conflict" | "refused" | "purged";

/** Where a server document stands with the server. */
export interface DocumentSyncState {
  document_id: string;
  /** The one-word summary of the fields below. */
  standing: DocumentStanding;
  /** Signed or burned-in revisions waiting to be pushed. */
  pending_revisions: number;
  /** This workstation's annotation changes waiting to be pushed. */
  pending_annotations: number;
  /** Another revision won on the server: the document needs the user's signature again. */
  sign_again: boolean;
  /** The server refused the newest pushed revision, and said why. */
  refused: string | null;
}

/** A document the server took back (its assignment ended), purged here; kept until dismissed. */
export interface PurgeNotice {
  id: number;
  /** The local document that was purged (null for a notice kept by an earlier Outpost). */
  document_id: string | null;
  at_ms: number;
  title: string;
  /** Annotation changes made here that the server never got, discarded with it. */
  discarded_annotations: number;
  /** Signed revisions made here that the server never took, discarded with it. */
  discarded_revisions: number;
  /** The server's reason, when it refused such a revision. */
  refused: string | null;
}

export interface SignatureReport {
  field: string;
  /** A person's signature, or the server's document time-stamp that seals validation data. */
  kind: "signature" | "document_time_stamp";
  /** For a signature: how far it is prepared for validation in the long term. */
  level: "B-B" | "B-LT" | "B-LTA" | null;
  signer: string | null;
  signing_time: string | null;
  reason: string | null;
  digest_matches: boolean;
  signature_verifies: boolean;
  chain_trusted: boolean;
  valid_at_signing_time: boolean;
  later_changes: "none" | "validation_data" | "signatures_only" | "annotations" | "content_changed";
  certification: number | null;
  revocation: Revocation;
  status: SignatureStatus;
  /** Why the verdict is not valid, as a code (null when valid). */
  status_reason: StatusReason | null;
}

/** Why a signature is not valid. */
export type StatusReason =
  | "unreadable"
  | "bytes_changed"
  | "signature_does_not_verify"
  | "content_changed"
  | "certification_forbids"
  | "not_trusted"
  | "not_valid_at_signing_time"
  | "revoked";

export interface TokenInfo {
  slot: number;
  label: string;
  serial: string;
  manufacturer: string;
}

export interface TokenKeyInfo {
  id: string;
  label: string;
  subject: string;
}

/** A key on a hardware token and the PIN that unlocks it. */
export interface TokenChoice {
  slot: number;
  key: string;
  pin: string;
}

export type BatchItemResult =
  | { result: "signed"; revision: number }
  | { result: "already_signed"; revision: number }
  | { result: "failed"; code: string; message: string };

/** A signing batch that was started and not ended (the app stopped, or the user stopped it). */
export interface UnfinishedBatch {
  id: string;
  key: string;
  reason: string;
  total: number;
  started_at_ms: number;
  /** Its documents still here that it has not signed, in the batch's order. */
  documents_left: string[];
}

/** One finished document of a signing batch. */
export interface BatchProgress {
  done: number;
  total: number;
  document: string;
  result: BatchItemResult;
  /** The documents being signed now, in the order they were started. */
  signing: string[];
}

export interface BatchReport {
  batch_id: string;
  total: number;
  signed: number;
  already_signed: number;
  failed: [string, string][];
  cancelled: boolean;
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

/** A file intake refused, lying in the inbox's rejected/ folder with its reason. */
export interface RejectedFile {
  name: string;
  source: string;
  reason: string;
  rejected_at_ms: number;
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

/** The sync engine's last error. */
export interface SyncErrorInfo {
  code: string;
  message: string;
}

/** What the sync engine reports (event `sync-state`, command `sync_state`). */
export interface SyncState {
  online: boolean;
  running: boolean;
  last_success_ms: number | null;
  pending_operations: number;
  attempts: number;
  last_error: SyncErrorInfo | null;
  needs_sign_in: boolean;
  device_revoked: boolean;
  /** The documents arriving in the running round, while there are any. */
  transfer: TransferProgress | null;
  /** The signed revisions going to the server in the running round, while there are any
   * (documents_* count revisions). */
  sending: TransferProgress | null;
  /** The user stopped the last transfer: nothing more until "sync now" (or the next interval). */
  paused: boolean;
}

/** Documents arriving from the server: what the progress line shows. */
export interface TransferProgress {
  documents_total: number;
  documents_done: number;
  bytes_total: number;
  bytes_done: number;
  current_title: string;
  /** Of those, stored already: they can be listed and opened while the round goes on. */
  documents_stored: number;
}

export function onSyncState(handler: (state: SyncState) => void): Promise<UnlistenFn> {
  return listen<SyncState>("sync-state", (e) => handler(e.payload));
}

/** The server revoked this device and the app erased its vault (event `vault-wiped`). */
export function onVaultWiped(handler: () => void): Promise<UnlistenFn> {
  return listen<null>("vault-wiped", () => handler());
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
  startTutorial: (user: string, password?: string) =>
    invoke<string>("start_tutorial", { user, password: password || null }),
  lessons: () => invoke<LessonProgress[]>("lessons"),
  startLesson: (lesson: string) => invoke<LessonProgress>("start_lesson", { lesson }),
  checkLesson: (lesson: string) => invoke<LessonProgress>("check_lesson", { lesson }),
  tutorialSummary: () => invoke<TutorialSummary>("tutorial_summary"),
  setPracticeServerOnline: (online: boolean) => invoke<boolean>("set_practice_server_online", { online }),
  practiceServerOnline: () => invoke<boolean>("practice_server_online"),
  trainingOverview: () => invoke<{ trainees: TraineeProgress[] }>("training_overview"),
  syncState: () => invoke<SyncState | null>("sync_state"),
  syncNow: () => invoke<void>("sync_now"),
  cancelSync: () => invoke<void>("cancel_sync"),
  documentSyncStates: () => invoke<DocumentSyncState[]>("document_sync_states"),
  purgeNotices: () => invoke<PurgeNotice[]>("purge_notices"),
  dismissPurgeNotices: (upTo: number) => invoke<void>("dismiss_purge_notices", { upTo }),
  offerRefusedRevisionAgain: (id: string) => invoke<boolean>("offer_refused_revision_again", { id }),
  takeServerCopy: (id: string) => invoke<string[]>("take_server_copy", { id }),
  listDocuments: () => invoke<DocumentSummary[]>("list_documents"),
  documentMarks: () => invoke<DocumentMarks[]>("document_marks"),
  openDocument: (id: string) => invoke<DocumentView>("open_document", { id }),
  closeDocument: (id: string) => invoke<void>("close_document", { id }),
  setVisiblePages: (id: string, first: number, last: number) =>
    invoke<void>("set_visible_pages", { id, first, last }),
  pageText: (id: string, page: number) => invoke<PageTextView>("page_text", { id, page }),
  findOnPage: (id: string, page: number, query: string) =>
    invoke<number[]>("find_on_page", { id, page, query }),
  search: (args: SearchArgs) => invoke<SearchHit[]>("search", { args }),
  listAnnotations: (id: string) => invoke<ViewAnnotation[]>("list_annotations", { id }),
  createAnnotation: (id: string, draft: ViewDraft) => invoke<void>("create_annotation", { id, draft }),
  editAnnotation: (annotation: string, revision: number, edit: { contents?: string; colour?: string }) =>
    invoke<void>("edit_annotation", { annotation, revision, edit }),
  deleteAnnotation: (annotation: string, revision: number) =>
    invoke<void>("delete_annotation", { annotation, revision }),
  undoAnnotation: (id: string) => invoke<string>("undo_annotation", { id }),
  redoAnnotation: (id: string) => invoke<string>("redo_annotation", { id }),
  suggestExportPath: (id: string) => invoke<string>("suggest_export_path", { id }),
  exportDocument: (id: string, path: string) => invoke<ExportReport>("export_document", { id, path }),
  listSigningKeys: () => invoke<SigningKeyInfo[]>("list_signing_keys"),
  createSigningKey: (label: string, algorithm: KeyAlgorithm, commonName: string) =>
    invoke<SigningKeyInfo>("create_signing_key", { label, algorithm, commonName }),
  requestCertificate: (key: string) => invoke<SigningKeyInfo>("request_certificate", { key }),
  /** Connects the unlocked vault to a server and starts syncing; the user's name there. */
  signOut: () => invoke<boolean>("sign_out"),
  setInboxFolder: (folder: string) => invoke<string>("set_inbox_folder", { folder }),
  inboxRejections: () => invoke<RejectedFile[]>("inbox_rejections"),
  connectServer: (request: ConnectRequest) => invoke<string>("connect_server", { request }),
  setUpWorkstation: (request: SetupRequest) => invoke<string>("set_up_workstation", { request }),
  importCertificate: (key: string, pem: string) => invoke<SigningKeyInfo>("import_certificate", { key, pem }),
  addTrustAnchor: (pem: string) => invoke<string>("add_trust_anchor", { pem }),
  signDocument: (id: string, options: SignOptions) => invoke<SignOutcome>("sign_document", { id, options }),
  validateDocument: (id: string) => invoke<SignatureReport[]>("validate_document", { id }),
  signBatch: (
    batchId: string,
    documents: string[],
    options: SignOptions,
    token: TokenChoice | null,
    onProgress: (p: BatchProgress) => void,
  ) => {
    const progress = new Channel<BatchProgress>();
    progress.onmessage = onProgress;
    const tokenArg = token ? { module: "", slot: token.slot, key_id: token.key, pin: token.pin } : null;
    return invoke<BatchReport>("sign_batch", { batchId, documents, options, token: tokenArg, progress });
  },
  listTokens: () => invoke<TokenInfo[]>("list_tokens"),
  tokenKeys: (slot: number, pin: string) => invoke<TokenKeyInfo[]>("token_keys", { slot, pin }),
  signWithToken: (id: string, token: TokenChoice, options: SignOptions) =>
    invoke<SignOutcome>("sign_with_token", { id, slot: token.slot, key: token.key, pin: token.pin, options }),
  cancelBatch: () => invoke<void>("cancel_batch"),
  unfinishedBatches: () => invoke<UnfinishedBatch[]>("unfinished_batches"),
  letBatchGo: (batchId: string) => invoke<void>("let_batch_go", { batchId }),
  awaitingSignature: () => invoke<string[]>("awaiting_signature"),
};

/** The address of a rendered page image (served by the app's `outpost-page` scheme). */
export function pageImageUrl(documentId: string, page: number, width: number, platform: string): string {
  const path = `${encodeURIComponent(documentId)}/${page}?width=${Math.round(width)}`;
  // WebKitGTK and macOS use scheme://localhost/; WebView2 on Windows uses http://scheme.localhost/.
  return platform.toLowerCase().includes("win")
    ? `http://outpost-page.localhost/${path}`
    : `outpost-page://localhost/${path}`;
}
