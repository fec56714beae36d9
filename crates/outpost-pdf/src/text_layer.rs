//! A page's text layer: its words with their boxes, so the user can select and copy text,
//! selections become highlight quads, and search hits can be marked on the page.

use serde::{Deserialize, Serialize};

use crate::annotation::{Quad, Rect};
use crate::geometry::PageGeometry;

/// One word on a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextWord {
    /// The word's characters.
    pub text: String,
    /// Its box in user space (the union of its characters' boxes).
    pub rect: Rect,
    /// The line it is on, counting from 0 in reading order.
    pub line: u32,
}

/// The words of one page, in reading order, with the page's geometry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageText {
    /// The page, 1-based.
    pub page: u32,
    /// Crop box and rotation, to place the words in view space.
    pub geometry: PageGeometry,
    /// The words.
    pub words: Vec<TextWord>,
}

impl PageText {
    /// The quads that cover words `first..=last` (in either order): one per line, as a highlight
    /// over that selection needs them. Out-of-range indexes are clamped.
    pub fn selection_quads(&self, first: usize, last: usize) -> Vec<Quad> {
        let mut quads = Vec::new();
        let mut current: Option<(u32, Rect)> = None;
        for word in self.selected(first, last) {
            current = match current {
                Some((line, rect)) if line == word.line => Some((
                    line,
                    Rect::bounding(rect.corners().into_iter().chain(word.rect.corners()))
                        .unwrap_or(rect),
                )),
                Some((_, rect)) => {
                    quads.push(Quad::from_rect(rect));
                    Some((word.line, word.rect))
                }
                None => Some((word.line, word.rect)),
            };
        }
        if let Some((_, rect)) = current {
            quads.push(Quad::from_rect(rect));
        }
        quads
    }

    /// The text of words `first..=last` (in either order): words joined by spaces, lines by
    /// newlines — what "copy" puts on the clipboard.
    pub fn selected_text(&self, first: usize, last: usize) -> String {
        let mut text = String::new();
        let mut previous_line = None;
        for word in self.selected(first, last) {
            match previous_line {
                Some(line) if line != word.line => text.push('\n'),
                Some(_) => text.push(' '),
                None => {}
            }
            text.push_str(&word.text);
            previous_line = Some(word.line);
        }
        text
    }

    /// Indexes of the words that a search for `terms` matches: case-insensitively, a word matches
    /// a term it starts with (as the full-text index matches word prefixes).
    pub fn find(&self, terms: &[String]) -> Vec<usize> {
        let terms: Vec<String> = terms
            .iter()
            .map(|t| t.trim_end_matches('*').to_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        self.words
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                let word = w
                    .text
                    .trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase();
                terms.iter().any(|t| word.starts_with(t.as_str()))
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn selected(&self, first: usize, last: usize) -> &[TextWord] {
        if self.words.is_empty() {
            return &[];
        }
        let (a, b) = (first.min(last), first.max(last));
        let end = b.min(self.words.len() - 1);
        if a > end {
            return &[];
        }
        &self.words[a..=end]
    }
}

/// Puts words into reading order: lines top to bottom, words left to right, in user space (where
/// a page's text stands upright; `/Rotate` only turns how the page is shown), whatever order the
/// content stream drew them in. Lines are numbered again from 0 in that order.
pub(crate) fn in_reading_order(words: Vec<TextWord>) -> Vec<TextWord> {
    // (top, left, words of the line)
    let mut lines: Vec<(f32, f32, Vec<TextWord>)> = Vec::new();
    for word in words {
        match lines.last_mut() {
            Some((top, left, line)) if line.first().map(|w| w.line) == Some(word.line) => {
                *top = top.max(word.rect.top);
                *left = left.min(word.rect.left);
                line.push(word);
            }
            _ => lines.push((word.rect.top, word.rect.left, vec![word])),
        }
    }
    for (_, _, line) in &mut lines {
        line.sort_by(|a, b| a.rect.left.total_cmp(&b.rect.left));
    }
    lines.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.total_cmp(&b.1)));
    lines
        .into_iter()
        .enumerate()
        .flat_map(|(number, (_, _, line))| {
            line.into_iter().map(move |mut word| {
                word.line = number as u32;
                word
            })
        })
        .collect()
}

/// Builds words from characters in content order: `(character, box, generated)`, where pdfium
/// marks spaces and line breaks it inferred as generated. Whitespace ends a word; a line break
/// starts a new line.
pub(crate) fn words_from_chars(
    chars: impl IntoIterator<Item = (char, Option<Rect>)>,
) -> Vec<TextWord> {
    let mut words = Vec::new();
    let mut line = 0u32;
    let mut text = String::new();
    let mut rect: Option<Rect> = None;
    let mut finish = |text: &mut String, rect: &mut Option<Rect>, line: u32| {
        if let (false, Some(r)) = (text.is_empty(), rect.take()) {
            words.push(TextWord {
                text: std::mem::take(text),
                rect: r,
                line,
            });
        }
        text.clear();
    };
    for (c, bounds) in chars {
        if c == '\n' || c == '\r' {
            finish(&mut text, &mut rect, line);
            if c == '\n' {
                line += 1;
            }
            continue;
        }
        if c.is_whitespace() || c == '\u{0}' {
            finish(&mut text, &mut rect, line);
            continue;
        }
        text.push(c);
        if let Some(b) = bounds.filter(|b| b.width() > 0.0 || b.height() > 0.0) {
            rect = Some(match rect {
                Some(r) => Rect::bounding(r.corners().into_iter().chain(b.corners())).unwrap_or(r),
                None => b,
            });
        }
    }
    finish(&mut text, &mut rect, line);
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(c: char, x: f32, y: f32) -> (char, Option<Rect>) {
        (
            c,
            Some(Rect {
                left: x,
                bottom: y,
                right: x + 5.0,
                top: y + 10.0,
            }),
        )
    }

    fn page() -> PageText {
        let mut chars = Vec::new();
        for (i, c) in "Дата: 07.07".chars().enumerate() {
            chars.push(boxed(c, 10.0 + i as f32 * 5.0, 100.0));
        }
        chars.push(('\r', None));
        chars.push(('\n', None));
        for (i, c) in "Approved by".chars().enumerate() {
            chars.push(boxed(c, 10.0 + i as f32 * 5.0, 80.0));
        }
        PageText {
            page: 1,
            geometry: PageGeometry::new(
                Rect {
                    left: 0.0,
                    bottom: 0.0,
                    right: 200.0,
                    top: 200.0,
                },
                0,
            ),
            words: words_from_chars(chars),
        }
    }

    #[test]
    fn words_split_at_spaces_and_lines_count_line_breaks() {
        let p = page();
        let words: Vec<(&str, u32)> = p.words.iter().map(|w| (w.text.as_str(), w.line)).collect();
        assert_eq!(
            words,
            vec![("Дата:", 0), ("07.07", 0), ("Approved", 1), ("by", 1)]
        );
        assert_eq!(p.words[0].rect.left, 10.0);
        assert_eq!(p.words[0].rect.right, 35.0);
    }

    #[test]
    fn a_selection_over_two_lines_gives_one_quad_per_line_and_copies_with_a_newline() {
        let p = page();
        let quads = p.selection_quads(3, 1);
        assert_eq!(quads.len(), 2);
        assert_eq!(quads[0].points[0].x, 40.0, "starts at the second word");
        assert_eq!(quads[1].points[1].x, 65.0, "ends after 'by'");
        assert_eq!(p.selected_text(1, 3), "07.07\nApproved by");
        assert_eq!(p.selected_text(0, 99), "Дата: 07.07\nApproved by");
    }

    #[test]
    fn words_come_in_reading_order_even_when_drawn_bottom_up() {
        let mut chars = Vec::new();
        for (i, c) in "lower line".chars().enumerate() {
            chars.push(boxed(c, 10.0 + i as f32 * 5.0, 80.0));
        }
        chars.push(('\n', None));
        for (i, c) in "upper line".chars().enumerate() {
            chars.push(boxed(c, 10.0 + i as f32 * 5.0, 100.0));
        }
        let words: Vec<(String, u32)> = in_reading_order(words_from_chars(chars))
            .iter()
            .map(|w| (w.text.clone(), w.line))
            .collect();
        assert_eq!(
            words,
            vec![
                ("upper".into(), 0),
                ("line".into(), 0),
                ("lower".into(), 1),
                ("line".into(), 1)
            ]
        );
    }

    #[test]
    fn find_matches_word_prefixes_ignoring_case_and_punctuation() {
        let p = page();
        assert_eq!(p.find(&["дата".into()]), vec![0]);
        assert_eq!(p.find(&["APPROV*".into(), "by".into()]), vec![2, 3]);
        assert!(p.find(&["missing".into()]).is_empty());
    }
}
