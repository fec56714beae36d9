//! Realistic sample documents for the demo, the tests and the benchmarks.
//!
//! They are generated, never committed: a personnel record, a procurement contract or an
//! operational report, in Russian or English, with as many pages as asked. The text is drawn with
//! an embedded TrueType font (DejaVu Sans) so that pdfium and other readers extract it exactly.

use std::path::PathBuf;
use std::sync::Arc;

use pdfium_render::prelude::*;

use crate::{PdfEngine, PdfError};

/// Environment variable naming the TrueType font the samples embed.
pub const SAMPLE_FONT_ENV: &str = "OUTPOST_SAMPLE_FONT";

/// The font file sample documents embed.
pub fn sample_font_path() -> PathBuf {
    std::env::var_os(SAMPLE_FONT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"))
}

/// Which kind of record to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// A member of staff's personnel record.
    PersonnelRecord,
    /// A procurement contract.
    ProcurementContract,
    /// A unit's operational report.
    OperationalReport,
}

impl SampleKind {
    /// Every kind, in a fixed order.
    pub const ALL: [SampleKind; 3] = [
        Self::PersonnelRecord,
        Self::ProcurementContract,
        Self::OperationalReport,
    ];
}

/// The language of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Russian.
    Russian,
    /// English.
    English,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    /// The kind of record.
    pub kind: SampleKind,
    /// Its language.
    pub language: Language,
    /// Number of pages (at least 1).
    pub pages: u32,
    /// Varies names, numbers and dates; the same spec always gives the same text.
    pub seed: u64,
    /// A phrase to put in the title line and on every page (tests use it to find the document).
    pub marker: Option<String>,
}

impl SampleSpec {
    /// The lines of each page. Line 1 of page 1 is the title.
    pub fn page_lines(&self) -> Vec<Vec<String>> {
        let mut rng = SplitMix(self.seed ^ 0x9e37_79b9_7f4a_7c15);
        let words = vocabulary(self.kind, self.language);
        let person = format!(
            "{} {}",
            pick(&mut rng, words.surnames),
            pick(&mut rng, words.given_names)
        );
        let number = 1000 + rng.next() % 9000;
        let day = 1 + rng.next() % 28;
        let month = 1 + rng.next() % 12;
        let mut title = format!("{} № {number}", words.title);
        if let Some(marker) = &self.marker {
            title = format!("{title} {marker}");
        }
        let mut pages = Vec::new();
        for page in 1..=self.pages.max(1) {
            let mut lines = Vec::new();
            if page == 1 {
                lines.push(title.clone());
                lines.push(format!("{}: {day:02}.{month:02}.2026", words.date_label));
                lines.push(format!("{}: {person}", words.person_label));
                lines.push(String::new());
            } else {
                lines.push(format!(
                    "{} № {number} — {} {page}",
                    words.title, words.page
                ));
                lines.push(String::new());
            }
            let section = pick(&mut rng, words.sections);
            lines.push(format!("{page}. {section}"));
            let body_lines = 28 + (rng.next() % 8) as usize;
            for _ in 0..body_lines {
                let mut line = String::new();
                while line.chars().count() < 60 {
                    if !line.is_empty() {
                        line.push(' ');
                    }
                    line.push_str(pick(&mut rng, words.body));
                }
                lines.push(line);
            }
            if let Some(marker) = &self.marker {
                lines.push(format!("{}: {marker}", words.reference));
            }
            pages.push(lines);
        }
        pages
    }
}

impl PdfEngine {
    /// Writes the sample described by `spec` as a new PDF.
    pub fn write_sample(&self, spec: &SampleSpec) -> Result<Vec<u8>, PdfError> {
        let font_path = sample_font_path();
        let font =
            std::fs::read(&font_path).map_err(|_| PdfError::FontMissing { path: font_path })?;
        self.write_text_pdf(spec.page_lines(), Arc::new(font))
    }

    /// Writes the sample described by `spec` as a *scanned* document: every page an image only
    /// (the text page rendered in grey at `dpi`, with speckles as a scanner leaves), no text layer.
    pub fn write_scanned_sample(&self, spec: &SampleSpec, dpi: u32) -> Result<Vec<u8>, PdfError> {
        let text_pdf = self.write_sample(spec)?;
        let seed = spec.seed;
        self.run(move |worker| {
            let pdfium = worker.pdfium;
            let engine_error = |e: PdfiumError| PdfError::Engine(e.to_string());
            let source = pdfium
                .load_pdf_from_byte_vec(text_pdf, None)
                .map_err(engine_error)?;
            let mut scanned = pdfium.create_new_pdf().map_err(engine_error)?;
            let mut rng = SplitMix(seed ^ 0x5ca1_ab1e);
            for page in source.pages().iter() {
                let width_px = (page.width().value / 72.0 * dpi as f32) as i32;
                let bitmap = page
                    .render_with_config(&PdfRenderConfig::new().set_target_width(width_px))
                    .map_err(engine_error)?;
                let mut grey = bitmap.as_image().map_err(engine_error)?.to_luma8();
                for _ in 0..(grey.width() * grey.height() / 400) {
                    let x = (rng.next() % u64::from(grey.width())) as u32;
                    let y = (rng.next() % u64::from(grey.height())) as u32;
                    grey.put_pixel(x, y, image::Luma([(rng.next() % 160) as u8]));
                }
                let mut out = scanned
                    .pages_mut()
                    .create_page_at_end(PdfPagePaperSize::a4())
                    .map_err(engine_error)?;
                let (w, h) = (out.width(), out.height());
                out.objects_mut()
                    .create_image_object(
                        PdfPoints::ZERO,
                        PdfPoints::ZERO,
                        &image::DynamicImage::ImageLuma8(grey),
                        Some(w),
                        Some(h),
                    )
                    .map_err(engine_error)?;
            }
            scanned.save_to_bytes().map_err(engine_error)
        })
    }

    /// Writes a PDF with one A4 page per element of `pages`, each a list of text lines.
    pub fn write_text_pdf(
        &self,
        pages: Vec<Vec<String>>,
        font: Arc<Vec<u8>>,
    ) -> Result<Vec<u8>, PdfError> {
        self.run(move |worker| {
            let pdfium = worker.pdfium;
            let engine_error = |e: PdfiumError| PdfError::Engine(e.to_string());
            let mut document = pdfium.create_new_pdf().map_err(engine_error)?;
            let font = document
                .fonts_mut()
                .load_true_type_from_bytes(&font, true)
                .map_err(engine_error)?;
            for lines in &pages {
                let mut page = document
                    .pages_mut()
                    .create_page_at_end(PdfPagePaperSize::a4())
                    .map_err(engine_error)?;
                // Regenerating the content stream after every text object is quadratic: once, at the end.
                page.set_content_regeneration_strategy(PdfPageContentRegenerationStrategy::Manual);
                let top = page.height().value - 64.0;
                for (i, line) in lines.iter().enumerate() {
                    if line.is_empty() {
                        continue;
                    }
                    let (size, y) = if i == 0 {
                        (14.0, top)
                    } else {
                        (10.0, top - 8.0 - i as f32 * 14.0)
                    };
                    page.objects_mut()
                        .create_text_object(
                            PdfPoints::new(56.0),
                            PdfPoints::new(y),
                            line,
                            font,
                            PdfPoints::new(size),
                        )
                        .map_err(engine_error)?;
                }
                page.regenerate_content().map_err(engine_error)?;
            }
            document.save_to_bytes().map_err(engine_error)
        })
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn pick<'a>(rng: &mut SplitMix, items: &[&'a str]) -> &'a str {
    items[(rng.next() % items.len() as u64) as usize]
}

struct Vocabulary {
    title: &'static str,
    date_label: &'static str,
    person_label: &'static str,
    reference: &'static str,
    page: &'static str,
    surnames: &'static [&'static str],
    given_names: &'static [&'static str],
    sections: &'static [&'static str],
    body: &'static [&'static str],
}

fn vocabulary(kind: SampleKind, language: Language) -> Vocabulary {
    use Language::*;
    use SampleKind::*;
    let (surnames, given_names): (&[&str], &[&str]) = match language {
        Russian => (
            &[
                "Иванов",
                "Петрова",
                "Смирнов",
                "Кузнецова",
                "Соколов",
                "Попова",
                "Лебедев",
                "Новикова",
            ],
            &[
                "Алексей",
                "Мария",
                "Дмитрий",
                "Елена",
                "Сергей",
                "Ольга",
                "Андрей",
                "Наталья",
            ],
        ),
        English => (
            &[
                "Walker", "Hughes", "Morgan", "Fletcher", "Bennett", "Harper", "Sutton", "Lawson",
            ],
            &[
                "James", "Emily", "Thomas", "Grace", "Oliver", "Hannah", "Daniel", "Chloe",
            ],
        ),
    };
    let (title, sections, body): (&str, &[&str], &[&str]) = match (kind, language) {
        (PersonnelRecord, Russian) => (
            "Личное дело сотрудника",
            &[
                "Общие сведения",
                "Образование и квалификация",
                "Прохождение службы",
                "Поощрения и взыскания",
                "Отпуска и командировки",
            ],
            &[
                "сотрудник",
                "принят",
                "на должность",
                "приказом",
                "от",
                "инспектора",
                "отдела",
                "кадров",
                "стаж",
                "работы",
                "составляет",
                "лет",
                "аттестация",
                "пройдена",
                "успешно",
                "квалификационный",
                "разряд",
                "присвоен",
                "в соответствии",
                "с положением",
                "о службе",
                "характеризуется",
                "положительно",
            ],
        ),
        (PersonnelRecord, English) => (
            "Personnel Record",
            &[
                "General information",
                "Education and qualifications",
                "Service history",
                "Commendations and reprimands",
                "Leave and assignments",
            ],
            &[
                "the employee",
                "was appointed",
                "to the post",
                "of inspector",
                "by order",
                "of the",
                "personnel department",
                "length of service",
                "is",
                "years",
                "appraisal",
                "completed",
                "successfully",
                "grade",
                "awarded",
                "in accordance",
                "with the",
                "service regulations",
                "reliable",
                "and diligent",
            ],
        ),
        (ProcurementContract, Russian) => (
            "Договор поставки",
            &[
                "Предмет договора",
                "Цена и порядок расчётов",
                "Сроки поставки",
                "Ответственность сторон",
                "Порядок разрешения споров",
            ],
            &[
                "поставщик",
                "обязуется",
                "передать",
                "покупателю",
                "товар",
                "в количестве",
                "и в сроки",
                "установленные",
                "спецификацией",
                "оплата",
                "производится",
                "безналичным",
                "расчётом",
                "в течение",
                "десяти",
                "рабочих дней",
                "с момента",
                "приёмки",
                "стороны",
                "несут",
                "ответственность",
                "за неисполнение",
            ],
        ),
        (ProcurementContract, English) => (
            "Procurement Contract",
            &[
                "Subject of the contract",
                "Price and payment terms",
                "Delivery schedule",
                "Liability of the parties",
                "Dispute resolution",
            ],
            &[
                "the supplier",
                "shall deliver",
                "to the buyer",
                "the goods",
                "in the quantity",
                "and within the time",
                "set out in",
                "the specification",
                "payment",
                "shall be made",
                "by bank transfer",
                "within",
                "ten",
                "business days",
                "of acceptance",
                "the parties",
                "are liable",
                "for non-performance",
                "of obligations",
            ],
        ),
        (OperationalReport, Russian) => (
            "Оперативная сводка",
            &[
                "Обстановка за сутки",
                "Выполненные задачи",
                "Происшествия",
                "Состояние техники",
                "Предложения",
            ],
            &[
                "за отчётный",
                "период",
                "подразделение",
                "выполнило",
                "поставленные",
                "задачи",
                "в полном объёме",
                "происшествий",
                "не зарегистрировано",
                "дежурная смена",
                "заступила",
                "своевременно",
                "техника",
                "исправна",
                "связь",
                "устойчивая",
                "личный состав",
                "налицо",
                "по списку",
            ],
        ),
        (OperationalReport, English) => (
            "Operational Report",
            &[
                "Situation over the last day",
                "Tasks completed",
                "Incidents",
                "State of equipment",
                "Recommendations",
            ],
            &[
                "during the",
                "reporting period",
                "the unit",
                "completed",
                "all assigned",
                "tasks",
                "in full",
                "no incidents",
                "were recorded",
                "the duty shift",
                "took over",
                "on time",
                "equipment",
                "is serviceable",
                "communications",
                "are stable",
                "all personnel",
                "present",
                "and accounted for",
            ],
        ),
    };
    let (date_label, person_label, reference, page) = match language {
        Russian => ("Дата", "Ответственный", "Контрольная отметка", "страница"),
        English => ("Date", "Responsible officer", "Reference mark", "page"),
    };
    Vocabulary {
        title,
        date_label,
        person_label,
        reference,
        page,
        surnames,
        given_names,
        sections,
        body,
    }
}

/// The sample documents of the demo (the local demo vault and the demo server): each kind in
/// Russian and English, two to five pages, from fixed seeds.
pub fn demo_samples() -> Vec<SampleSpec> {
    let mut specs = Vec::new();
    for (i, kind) in SampleKind::ALL.into_iter().enumerate() {
        for (j, language) in [Language::Russian, Language::English]
            .into_iter()
            .enumerate()
        {
            specs.push(SampleSpec {
                kind,
                language,
                pages: 2 + (i as u32 + j as u32) % 4,
                seed: (i * 2 + j) as u64 + 1,
                marker: None,
            });
        }
    }
    specs
}
