use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use pdfium_render::prelude::*;

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

type Job = Box<dyn FnOnce(&Pdfium) + Send>;

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
                for job in job_rx {
                    job(&pdfium);
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
        work: impl FnOnce(&Pdfium) -> Result<T, PdfError> + Send + 'static,
    ) -> Result<T, PdfError> {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |pdfium| {
            let _ = tx.send(work(pdfium));
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
        self.run(move |pdfium| {
            let document = load(pdfium, &bytes)?;
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

    /// Renders page `page` (1-based) `width` pixels wide, as PNG.
    pub fn render_page_png(
        &self,
        bytes: Arc<Vec<u8>>,
        page: u32,
        width: u32,
    ) -> Result<RenderedPage, PdfError> {
        precheck(&bytes)?;
        let width = width.clamp(16, 8192);
        self.run(move |pdfium| {
            let document = load(pdfium, &bytes)?;
            let page_count = document.pages().len() as u32;
            if page == 0 || page > page_count {
                return Err(PdfError::PageOutOfRange { page, page_count });
            }
            let pdf_page = document
                .pages()
                .get((page - 1) as i32)
                .map_err(|e| PdfError::Engine(e.to_string()))?;
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
        .map_err(|e| match e {
            PdfiumError::PdfiumLibraryInternalError(PdfiumInternalError::PasswordError) => {
                PdfError::PasswordProtected
            }
            PdfiumError::PdfiumLibraryInternalError(PdfiumInternalError::FormatError) => {
                PdfError::Damaged("the file structure is invalid".into())
            }
            other => PdfError::Damaged(other.to_string()),
        })
}

/// pdfium separates lines with CR LF and may leave NULs; keep plain `\n` text.
fn normalise_text(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{0}'], "\n")
        .replace('\u{2}', "-")
        .replace('\u{3}', "")
}
