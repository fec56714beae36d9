use std::collections::VecDeque;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use pdfium_render::prelude::*;

use crate::annotation::Rect;
use crate::geometry::PageGeometry;
use crate::text_layer::{in_reading_order, words_from_chars, PageText};
use crate::PdfError;

/// Environment variable naming the libpdfium.so to use.
pub const PDFIUM_PATH_ENV: &str = "OUTPOST_PDFIUM_PATH";

/// Where libpdfium.so is: `$OUTPOST_PDFIUM_PATH`, else where the setup command installs it
/// (`$XDG_DATA_HOME/outpost/pdfium/libpdfium.so`, by default under `~/.local/share`).
pub fn locate_pdfium() -> PathBuf {
    if let Some(path) = std::env::var_os(PDFIUM_PATH_ENV) {
        return PathBuf::from(path);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("outpost/pdfium/libpdfium.so")
}

/// Facts about a valid PDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfInfo {
    /// Number of pages.
    pub page_count: u32,
    /// The title from the document's metadata, if it has a non-empty one.
    pub metadata_title: Option<String>,
    /// The text of each page, first page first.
    pub page_texts: Vec<String>,
}

impl PdfInfo {
    /// The metadata title, else the first non-empty line of text (at most 200 characters).
    pub fn title(&self) -> Option<String> {
        self.metadata_title.clone().or_else(|| {
            self.page_texts
                .iter()
                .flat_map(|t| t.lines())
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(|l| l.chars().take(200).collect())
        })
    }
}

/// A page rendered to a PNG image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPage {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// PNG-encoded pixels.
    pub png: Vec<u8>,
}

/// How many parsed documents the worker keeps open (most recently used first).
const OPEN_DOCUMENTS_KEPT: usize = 4;

/// The worker thread's state: pdfium and the documents it has open.
pub(crate) struct Worker<'p> {
    pub(crate) pdfium: &'p Pdfium,
    open: VecDeque<(String, PdfDocument<'p>)>,
}

impl<'p> Worker<'p> {
    /// The open document under `key`, opening it from `bytes` if it is not open yet.
    fn document(&mut self, key: &str, bytes: &[u8]) -> Result<&PdfDocument<'p>, PdfError> {
        if let Some(at) = self.open.iter().position(|(k, _)| k == key) {
            if at != 0 {
                if let Some(entry) = self.open.remove(at) {
                    self.open.push_front(entry);
                }
            }
        } else {
            precheck(bytes)?;
            let document = load_owned(self.pdfium, bytes.to_vec())?;
            self.open.push_front((key.to_owned(), document));
            self.open.truncate(OPEN_DOCUMENTS_KEPT);
        }
        self.open
            .front()
            .map(|(_, d)| d)
            .ok_or(PdfError::EngineStopped)
    }

    /// Page `page` (1-based) of the open document under `key`.
    fn page(&mut self, key: &str, bytes: &[u8], page: u32) -> Result<PdfPage<'_>, PdfError> {
        let document = self.document(key, bytes)?;
        let page_count = document.pages().len() as u32;
        if page == 0 || page > page_count {
            return Err(PdfError::PageOutOfRange { page, page_count });
        }
        document
            .pages()
            .get((page - 1) as i32)
            .map_err(|e| PdfError::Damaged(format!("page {page} cannot be loaded: {e}")))
    }
}

type Job = Box<dyn for<'p> FnOnce(&mut Worker<'p>) + Send>;

/// A document the viewer works on: its bytes and a key naming them (its SHA-256, say), under
/// which the worker keeps it parsed between requests.
#[derive(Clone)]
pub struct ViewedDocument {
    /// Names these bytes; the same key must always mean the same bytes.
    pub key: String,
    /// The PDF.
    pub bytes: Arc<Vec<u8>>,
}

impl std::fmt::Debug for ViewedDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewedDocument")
            .field("key", &self.key)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Asked just before a queued request runs: `false` drops it (the page was scrolled past).
#[derive(Clone)]
pub struct StillWanted(Arc<dyn Fn() -> bool + Send + Sync>);

impl StillWanted {
    /// Every request is wanted.
    pub fn always() -> Self {
        StillWanted(Arc::new(|| true))
    }

    /// Wanted while `check` says so.
    pub fn when(check: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        StillWanted(Arc::new(check))
    }

    fn check(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for StillWanted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StillWanted")
    }
}

/// A handle to the one thread that owns pdfium. Cheap to clone; all clones share the thread.
#[derive(Clone)]
pub struct PdfEngine {
    jobs: Arc<Mutex<Sender<Job>>>,
}

impl std::fmt::Debug for PdfEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PdfEngine")
    }
}

static ENGINE: OnceLock<Result<PdfEngine, PdfError>> = OnceLock::new();

impl PdfEngine {
    /// The process's PDF engine, started on first use with the library at `library`.
    /// pdfium can be bound only once per process, so later calls return the same engine.
    pub fn start(library: &Path) -> Result<Self, PdfError> {
        ENGINE.get_or_init(|| Self::spawn(library)).clone()
    }

    /// [`PdfEngine::start`] with the library from [`locate_pdfium`].
    pub fn start_default() -> Result<Self, PdfError> {
        Self::start(&locate_pdfium())
    }

    fn spawn(library: &Path) -> Result<Self, PdfError> {
        if !library.is_file() {
            return Err(PdfError::LibraryMissing {
                path: library.to_owned(),
            });
        }
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), PdfError>>();
        let path = library.to_owned();
        std::thread::Builder::new()
            .name("pdfium".into())
            .spawn(move || {
                let pdfium = match Pdfium::bind_to_library(&path) {
                    Ok(bindings) => Pdfium::new(bindings),
                    Err(e) => {
                        let _ = ready_tx.send(Err(PdfError::LibraryUnusable {
                            path,
                            reason: e.to_string(),
                        }));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut worker = Worker {
                    pdfium: &pdfium,
                    open: VecDeque::new(),
                };
                for job in job_rx {
                    job(&mut worker);
                }
            })
            .map_err(|e| PdfError::Engine(format!("cannot start the PDF thread: {e}")))?;
        ready_rx.recv().map_err(|_| PdfError::EngineStopped)??;
        Ok(Self {
            jobs: Arc::new(Mutex::new(job_tx)),
        })
    }

    /// Runs `work` on the pdfium thread and waits for its answer.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        work: impl for<'p> FnOnce(&mut Worker<'p>) -> Result<T, PdfError> + Send + 'static,
    ) -> Result<T, PdfError> {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |worker| {
            let _ = tx.send(work(worker));
        });
        self.jobs
            .lock()
            .map_err(|_| PdfError::EngineStopped)?
            .send(job)
            .map_err(|_| PdfError::EngineStopped)?;
        rx.recv().map_err(|_| PdfError::EngineStopped)?
    }

    /// Checks that `bytes` are a readable, unencrypted, complete PDF and reads its page count,
    /// metadata title and the text of every page.
    pub fn inspect(&self, bytes: Arc<Vec<u8>>) -> Result<PdfInfo, PdfError> {
        precheck(&bytes)?;
        self.run(move |worker| {
            let document = load(worker.pdfium, &bytes)?;
            let metadata_title = document
                .metadata()
                .get(PdfDocumentMetadataTagType::Title)
                .map(|t| t.value().trim().to_owned())
                .filter(|t| !t.is_empty());
            let mut page_texts = Vec::new();
            for page in document.pages().iter() {
                let text = page
                    .text()
                    .map_err(|e| PdfError::Damaged(format!("page text unreadable: {e}")))?;
                page_texts.push(normalise_text(&text.all()));
            }
            Ok(PdfInfo {
                page_count: page_texts.len() as u32,
                metadata_title,
                page_texts,
            })
        })
    }

    /// The size of every page as the user sees it (crop box, rotated), in points: what a
    /// continuous-scroll view needs to lay out all pages before any is rendered.
    pub fn page_sizes(&self, document: &ViewedDocument) -> Result<Vec<(f32, f32)>, PdfError> {
        let document = document.clone();
        self.run(move |worker| {
            let pdf = worker.document(&document.key, &document.bytes)?;
            let sizes = pdf
                .pages()
                .page_sizes()
                .map_err(|e| PdfError::Damaged(format!("page sizes unreadable: {e}")))?;
            Ok(sizes
                .iter()
                .map(|r| (r.width().value, r.height().value))
                .collect())
        })
    }

    /// Renders page `page` (1-based) `width` pixels wide, as PNG. Returns
    /// [`PdfError::NoLongerWanted`] without rendering if `wanted` says no when its turn comes.
    pub fn render(
        &self,
        document: &ViewedDocument,
        page: u32,
        width: u32,
        wanted: &StillWanted,
    ) -> Result<RenderedPage, PdfError> {
        let width = width.clamp(16, 8192);
        let document = document.clone();
        let wanted = wanted.clone();
        self.run(move |worker| {
            if !wanted.check() {
                return Err(PdfError::NoLongerWanted);
            }
            let pdf_page = worker.page(&document.key, &document.bytes, page)?;
            let config = PdfRenderConfig::new()
                .set_target_width(width as i32)
                .set_maximum_height(16384)
                .render_form_data(true)
                .render_annotations(true);
            let bitmap = pdf_page
                .render_with_config(&config)
                .map_err(|e| PdfError::Engine(format!("render failed: {e}")))?;
            let image = bitmap
                .as_image()
                .map_err(|e| PdfError::Engine(format!("render failed: {e}")))?;
            let mut png = Vec::new();
            image
                .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
                .map_err(|e| PdfError::Engine(format!("PNG encoding failed: {e}")))?;
            Ok(RenderedPage {
                width: image.width(),
                height: image.height(),
                png,
            })
        })
    }

    /// Renders page `page` (1-based) of `bytes` `width` pixels wide, as PNG, without keeping the
    /// document open.
    pub fn render_page_png(
        &self,
        bytes: Arc<Vec<u8>>,
        page: u32,
        width: u32,
    ) -> Result<RenderedPage, PdfError> {
        let key = format!("transient:{:p}", Arc::as_ptr(&bytes));
        let document = ViewedDocument { key, bytes };
        let result = self.render(&document, page, width, &StillWanted::always());
        let key = document.key;
        self.run(move |worker| {
            worker.open.retain(|(k, _)| *k != key);
            Ok(())
        })?;
        result
    }

    /// The words of page `page` (1-based) with their boxes, and the page's geometry.
    pub fn page_text(&self, document: &ViewedDocument, page: u32) -> Result<PageText, PdfError> {
        let document = document.clone();
        self.run(move |worker| {
            let pdf_page = worker.page(&document.key, &document.bytes, page)?;
            let geometry = geometry_of(&pdf_page, page)?;
            let text = pdf_page
                .text()
                .map_err(|e| PdfError::Damaged(format!("page {page} text unreadable: {e}")))?;
            let chars = text.chars();
            let words = words_from_chars(chars.iter().map(|c| {
                let ch = c.unicode_char().unwrap_or('\u{0}');
                let generated = c.is_generated().unwrap_or(false);
                let bounds = if generated {
                    None
                } else {
                    c.loose_bounds().ok().map(to_rect)
                };
                (ch, bounds)
            }));
            Ok(PageText {
                page,
                words: in_reading_order(words),
                geometry,
            })
        })
    }

    /// The crop box and rotation of page `page` (1-based), without reading its text.
    pub fn page_geometry(
        &self,
        document: &ViewedDocument,
        page: u32,
    ) -> Result<PageGeometry, PdfError> {
        let document = document.clone();
        self.run(move |worker| {
            let pdf_page = worker.page(&document.key, &document.bytes, page)?;
            geometry_of(&pdf_page, page)
        })
    }

    /// Closes the document under `key` in the worker (after the viewer closes it).
    pub fn close(&self, key: &str) -> Result<(), PdfError> {
        let key = key.to_owned();
        self.run(move |worker| {
            worker.open.retain(|(k, _)| *k != key);
            Ok(())
        })
    }
}

fn geometry_of(pdf_page: &PdfPage<'_>, page: u32) -> Result<PageGeometry, PdfError> {
    let media = pdf_page
        .boundaries()
        .media()
        .map(|b| to_rect(b.bounds))
        .map_err(|e| PdfError::Damaged(format!("page {page} has no media box: {e}")))?;
    let crop = pdf_page
        .boundaries()
        .crop()
        .map(|b| to_rect(b.bounds))
        .unwrap_or(media);
    let rotate = match pdf_page.rotation() {
        Ok(PdfPageRenderRotation::Degrees90) => 90,
        Ok(PdfPageRenderRotation::Degrees180) => 180,
        Ok(PdfPageRenderRotation::Degrees270) => 270,
        _ => 0,
    };
    Ok(PageGeometry::new(crop, rotate))
}

fn to_rect(r: PdfRect) -> Rect {
    Rect {
        left: r.left().value,
        bottom: r.bottom().value,
        right: r.right().value,
        top: r.top().value,
    }
}

/// Cheap checks pdfium does not make: pdfium silently repairs truncated files.
pub(crate) fn precheck(bytes: &[u8]) -> Result<(), PdfError> {
    if bytes.is_empty() {
        return Err(PdfError::Empty);
    }
    let head = &bytes[..bytes.len().min(1024)];
    if !contains(head, b"%PDF-") {
        return Err(PdfError::NotPdf);
    }
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    if !contains(tail, b"%%EOF") {
        return Err(PdfError::Truncated);
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn load<'a>(pdfium: &'a Pdfium, bytes: &'a [u8]) -> Result<PdfDocument<'a>, PdfError> {
    pdfium
        .load_pdf_from_byte_slice(bytes, None)
        .map_err(load_error)
}

fn load_owned(pdfium: &Pdfium, bytes: Vec<u8>) -> Result<PdfDocument<'_>, PdfError> {
    pdfium
        .load_pdf_from_byte_vec(bytes, None)
        .map_err(load_error)
}

fn load_error(e: PdfiumError) -> PdfError {
    match e {
        PdfiumError::PdfiumLibraryInternalError(PdfiumInternalError::PasswordError) => {
            PdfError::PasswordProtected
        }
        PdfiumError::PdfiumLibraryInternalError(PdfiumInternalError::FormatError) => {
            PdfError::Damaged("the file structure is invalid".into())
        }
        other => PdfError::Damaged(other.to_string()),
    }
}

/// pdfium separates lines with CR LF and may leave NULs; keep plain `\n` text.
fn normalise_text(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{0}'], "\n")
        .replace('\u{2}', "-")
        .replace('\u{3}', "")
}
