//! Full-text search over page text (SQLite FTS5 inside the encrypted database).
//!
//! The user's query is never handed to FTS5 as-is: it is parsed into words, `"phrases"` and
//! `prefix*` terms and rebuilt as a safe FTS5 expression, so a stray operator cannot cause an FTS
//! syntax error and a malformed query gets a [`SearchQueryError`] that says what to fix.

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::{DocumentId, SearchQueryError, Vault, VaultError};

const MARK_START: char = '\u{2}';
const MARK_END: char = '\u{3}';

/// A search with its filters.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// What the user typed: words, `"quoted phrases"`, `prefix*`.
    pub query: String,
    /// Only documents whose title contains this (case-insensitive).
    pub title_contains: Option<String>,
    /// Only documents imported at or after this time (ms since epoch).
    pub imported_from_ms: Option<i64>,
    /// Only documents imported before this time (ms since epoch).
    pub imported_before_ms: Option<i64>,
    /// At most this many hits (default 50).
    pub limit: Option<u32>,
}

/// A piece of a snippet; the highlighted pieces are the matched words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnippetPart {
    /// The text.
    pub text: String,
    /// Whether it matched the query.
    pub highlighted: bool,
}

/// One document that matched, shown at the first page that holds the query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    /// The document.
    pub document_id: DocumentId,
    /// Its title.
    pub title: String,
    /// The page shown (1-based).
    pub page_no: u32,
    /// Text around the match.
    pub snippet: Vec<SnippetPart>,
    /// BM25 score; lower is better.
    pub score: f64,
}

impl SearchHit {
    /// The snippet as plain text.
    pub fn snippet_text(&self) -> String {
        self.snippet.iter().map(|p| p.text.as_str()).collect()
    }
}

/// Pages of one document share a rowid range of this size in the page index.
pub(crate) const MAX_PAGES: usize = 1 << 20;

/// The page index rowid of page `page_no` (1-based) of the document in documents row `document_row`.
pub(crate) fn page_rowid(document_row: i64, page_no: i64) -> i64 {
    document_row * MAX_PAGES as i64 + page_no
}

/// Splits what the user typed into quoted FTS5 terms: words, phrases and prefixes.
fn parse_terms(input: &str) -> Result<Vec<String>, SearchQueryError> {
    let mut terms = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if c == '"' {
            chars.next();
            let mut phrase = String::new();
            let mut closed = false;
            for c in chars.by_ref() {
                if c == '"' {
                    closed = true;
                    break;
                }
                phrase.push(c);
            }
            if !closed {
                return Err(SearchQueryError::UnclosedQuote);
            }
            let phrase = phrase.trim();
            if !phrase.chars().any(char::is_alphanumeric) {
                return Err(SearchQueryError::EmptyPhrase);
            }
            let prefix = chars.peek() == Some(&'*');
            if prefix {
                chars.next();
            }
            terms.push(quoted(phrase, prefix));
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '"' {
                break;
            }
            word.push(c);
            chars.next();
        }
        let prefix = word.ends_with('*');
        let bare = word.trim_end_matches('*');
        if !bare.chars().any(char::is_alphanumeric) {
            if prefix {
                return Err(SearchQueryError::BarePrefix);
            }
            continue; // punctuation alone matches nothing; ignore it
        }
        terms.push(quoted(bare, prefix));
    }
    if terms.is_empty() {
        return Err(SearchQueryError::Empty);
    }
    Ok(terms)
}

fn quoted(text: &str, prefix: bool) -> String {
    let escaped = text.replace('"', "\"\"");
    if prefix {
        format!("\"{escaped}\"*")
    } else {
        format!("\"{escaped}\"")
    }
}

fn split_snippet(marked: &str) -> Vec<SnippetPart> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut highlighted = false;
    for c in marked.chars() {
        if c == MARK_START || c == MARK_END {
            if !current.is_empty() {
                parts.push(SnippetPart {
                    text: std::mem::take(&mut current),
                    highlighted,
                });
            }
            highlighted = c == MARK_START;
        } else {
            current.push(c);
        }
    }
    if !current.is_empty() {
        parts.push(SnippetPart {
            text: current,
            highlighted,
        });
    }
    parts
}

/// Lower-cases by Unicode rules (SQLite's own `lower` only knows ASCII).
pub(crate) fn fold_case(text: &str) -> String {
    text.to_lowercase()
}

pub(crate) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "outpost_fold",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text: Option<String> = ctx.get(0)?;
            Ok(text.map(|t| fold_case(&t)))
        },
    )
}

/// Documents indexed one transaction at a time after which the search indexes are merged: in one
/// run of the import benchmark's search over 10,000 documents the median was 8.3 ms unmerged and
/// 6.9 ms merged (docs/benchmarks.md has the full run).
pub(crate) const MERGE_AFTER_DOCUMENTS: usize = 1_000;

impl Vault {
    /// Rewrites a one-word prefix term (`"аттестац"*`) as the indexed words it stands for
    /// (`("аттестация" OR "аттестации")`): FTS5 answers a prefix by merging every matching
    /// doclist into a buffer, several times slower than reading the words themselves. Any other
    /// term, a prefix that matches no indexed word as typed (the index holds words folded by its
    /// tokenizer), or one that stands for too many words, stays as it is.
    fn expand_prefix(&self, term: String) -> Result<String, VaultError> {
        const MAX_WORDS: usize = 32;
        let Some(prefix) = term.strip_prefix('"').and_then(|t| t.strip_suffix("\"*")) else {
            return Ok(term);
        };
        if prefix.contains(|c: char| c.is_whitespace() || c == '"') {
            return Ok(term);
        }
        let prefix = fold_case(prefix);
        let mut stmt = self.conn.prepare_cached(
            "SELECT term FROM document_vocab WHERE term >= ?1 AND term < ?2 LIMIT ?3",
        )?;
        let words: Vec<String> = stmt
            .query_map(
                rusqlite::params![prefix, format!("{prefix}\u{10FFFF}"), MAX_WORDS as i64 + 1],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        if words.is_empty() || words.len() > MAX_WORDS {
            return Ok(term);
        }
        let words: Vec<String> = words.iter().map(|w| quoted(w, false)).collect();
        Ok(format!("({})", words.join(" OR ")))
    }

    /// Merges each search index's segments into one (FTS5 `optimize`): after many documents
    /// arrived one transaction at a time (a first sync, a large intake) a query then reads one
    /// b-tree per index instead of one per segment level. Costs a rewrite of the indexes; meant
    /// for after large rounds, not after every document.
    pub fn merge_search_index(&self) -> Result<(), VaultError> {
        self.conn.execute_batch(
            "INSERT INTO document_index (document_index) VALUES ('optimize');
             INSERT INTO page_index (page_index) VALUES ('optimize');",
        )?;
        self.indexed_since_merge.set(0);
        Ok(())
    }

    /// Counts `count` documents just indexed; when `may_merge` and [`MERGE_AFTER_DOCUMENTS`]
    /// came since the last merge, merges the search indexes ([`Vault::merge_search_index`]).
    /// Called after the commit that stored them (a pull round merges once, when it is applied,
    /// not while its documents arrive). A merge that fails changes nothing; the count starts
    /// again, so it is not retried at every document.
    pub(crate) fn note_documents_indexed(&self, count: usize, may_merge: bool) {
        let since = self.indexed_since_merge.get() + count;
        self.indexed_since_merge.set(since);
        if may_merge && since >= MERGE_AFTER_DOCUMENTS && self.merge_search_index().is_err() {
            self.indexed_since_merge.set(0);
        }
    }

    /// Runs a ranked full-text search. Documents are the results: a document matches when its
    /// text holds every term; documents are ranked by BM25, and each hit shows the first page
    /// that holds every term (else the first that holds any of them) with a snippet.
    pub fn search(&self, request: &SearchRequest) -> Result<Vec<SearchHit>, VaultError> {
        let terms = parse_terms(&request.query)?
            .into_iter()
            .map(|term| self.expand_prefix(term))
            .collect::<Result<Vec<_>, _>>()?;
        let all_terms = terms.join(" AND ");
        let title = request.title_contains.as_deref().map(fold_case);
        // Step 1: rank documents (one index row per document, so a common word costs one score
        // per document rather than one per page).
        let ranked: Vec<(i64, f64)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT rowid, bm25(document_index) AS score FROM document_index
                 WHERE document_index MATCH ?1
                   AND ((?2 IS NULL AND ?3 IS NULL AND ?4 IS NULL) OR rowid IN (
                       SELECT rowid FROM documents
                       WHERE (?2 IS NULL OR instr(outpost_fold(title), ?2) > 0)
                         AND (?3 IS NULL OR imported_at_ms >= ?3)
                         AND (?4 IS NULL OR imported_at_ms < ?4)))
                 ORDER BY score, rowid LIMIT ?5",
            )?;
            let rows = stmt.query_map(
                rusqlite::params![
                    all_terms,
                    title,
                    request.imported_from_ms,
                    request.imported_before_ms,
                    request.limit.unwrap_or(50)
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            rows.collect::<Result<_, _>>()?
        };
        // Step 2: the page to show, searched only inside the document's rowid range. Not ranked
        // by bm25: its IDF would rescan the whole index once per document.
        let any_term = terms.join(" OR ");
        let mut best_page = self.conn.prepare_cached(
            "SELECT page_no, snippet(page_index, 0, char(2), char(3), '…', 16)
             FROM page_index WHERE page_index MATCH ?1 AND rowid BETWEEN ?2 AND ?3
             ORDER BY rowid LIMIT 1",
        )?;
        let mut metadata = self
            .conn
            .prepare_cached("SELECT id, title FROM documents WHERE rowid = ?1")?;
        let mut hits = Vec::with_capacity(ranked.len());
        for (document_row, score) in ranked {
            let range = (
                page_rowid(document_row, 0),
                page_rowid(document_row, MAX_PAGES as i64 - 1),
            );
            let mut page = None;
            for query in [&all_terms, &any_term] {
                page = best_page
                    .query_row(rusqlite::params![query, range.0, range.1], |r| {
                        Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?))
                    })
                    .optional()?;
                if page.is_some() {
                    break;
                }
            }
            let (page_no, marked) = page.unwrap_or((1, String::new()));
            let (id, title) = metadata.query_row([document_row], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            hits.push(SearchHit {
                document_id: DocumentId(id),
                title,
                page_no,
                snippet: split_snippet(&marked),
                score,
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The FTS5 expression the search runs for `input` (all terms required).
    fn to_fts_query(input: &str) -> Result<String, SearchQueryError> {
        Ok(parse_terms(input)?.join(" AND "))
    }

    #[test]
    fn words_phrases_and_prefixes_become_quoted_terms() {
        assert_eq!(
            to_fts_query("договор \"on duty\" прик*").unwrap(),
            "\"договор\" AND \"on duty\" AND \"прик\"*"
        );
    }

    #[test]
    fn fts_operators_typed_by_the_user_are_plain_words() {
        assert_eq!(
            to_fts_query("NEAR( a:b -c").unwrap(),
            "\"NEAR(\" AND \"a:b\" AND \"-c\""
        );
    }

    #[test]
    fn malformed_queries_get_specific_errors() {
        assert_eq!(to_fts_query("  "), Err(SearchQueryError::Empty));
        assert_eq!(
            to_fts_query("\"open phrase"),
            Err(SearchQueryError::UnclosedQuote)
        );
        assert_eq!(to_fts_query("*"), Err(SearchQueryError::BarePrefix));
        assert_eq!(to_fts_query("\"\""), Err(SearchQueryError::EmptyPhrase));
    }

    #[test]
    fn snippet_markers_split_into_highlighted_parts() {
        let parts = split_snippet("a \u{2}b\u{3} c");
        assert_eq!(
            parts,
            vec![
                SnippetPart {
                    text: "a ".into(),
                    highlighted: false
                },
                SnippetPart {
                    text: "b".into(),
                    highlighted: true
                },
                SnippetPart {
                    text: " c".into(),
                    highlighted: false
                },
            ]
        );
    }
}
