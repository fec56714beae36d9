//! Offline search (Russian and English) and the tamper-evident audit chain.

mod common;

use common::*;
use outpost_vault::KeyFile;
use outpost_workstation::{Language, OsKeyring, SampleKind, SampleSpec, SearchRequest};

fn search(
    session: &outpost_workstation::Session,
    query: &str,
) -> Vec<outpost_workstation::SearchHit> {
    session
        .search(&SearchRequest {
            query: query.into(),
            ..Default::default()
        })
        .unwrap()
}

#[test]
fn russian_and_english_phrases_are_found_on_the_right_page_with_a_snippet() {
    let tmp = tempfile::tempdir().unwrap();
    let (ws, clock) = workstation(tmp.path(), "search");
    let session = new_session(&ws, "vera", "pw-vera", 51);

    let ru = SampleSpec {
        kind: SampleKind::ProcurementContract,
        language: Language::Russian,
        pages: 3,
        seed: 8,
        marker: None,
    };
    let en = SampleSpec {
        kind: SampleKind::OperationalReport,
        language: Language::English,
        pages: 4,
        seed: 9,
        marker: None,
    };
    let ru_doc = session
        .import_bytes(pdf().write_sample(&ru).unwrap(), "ru.pdf")
        .unwrap()
        .document()
        .clone();
    clock.advance(86_400_000);
    let en_doc = session
        .import_bytes(pdf().write_sample(&en).unwrap(), "en.pdf")
        .unwrap()
        .document()
        .clone();

    // A phrase that is the heading of page 2 of the Russian contract (text of its own, from the generator).
    let ru_line = &ru.page_lines()[1][0];
    let ru_phrase = format!(
        "\"{}\"",
        ru_line.split(" — ").nth(1).unwrap().to_uppercase()
    );
    assert_eq!(ru_phrase, "\"СТРАНИЦА 2\"");
    let hits = search(&session, &format!("{ru_phrase} договор"));
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].document_id, ru_doc.id);
    assert_eq!(hits[0].page_no, 2);
    let highlighted: Vec<_> = hits[0]
        .snippet
        .iter()
        .filter(|p| p.highlighted)
        .map(|p| p.text.to_lowercase())
        .collect();
    assert!(
        highlighted.iter().any(|t| t == "страница 2"),
        "{highlighted:?} in {:?}",
        hits[0].snippet_text()
    );

    let hits = search(&session, "\"report № \" \"page 3\"");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(
        (hits[0].document_id.clone(), hits[0].page_no),
        (en_doc.id.clone(), 3)
    );
    assert!(hits[0].snippet_text().to_lowercase().contains("page 3"));

    // Prefixes, case-insensitivity in both alphabets.
    assert!(!search(&session, "ПОСТАВ*").is_empty());
    assert!(search(&session, "OPERATIONAL")
        .iter()
        .all(|h| h.document_id == en_doc.id));

    // Filters: title and import date.
    let by_title = session
        .search(&SearchRequest {
            query: "2026".into(),
            title_contains: Some("ДОГОВОР".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(!by_title.is_empty());
    assert!(by_title.iter().all(|h| h.document_id == ru_doc.id));
    let by_date = session
        .search(&SearchRequest {
            query: "2026".into(),
            imported_from_ms: Some(START_MS + 1),
            ..Default::default()
        })
        .unwrap();
    assert!(!by_date.is_empty());
    assert!(by_date.iter().all(|h| h.document_id == en_doc.id));

    // A malformed query is a clear error, not an FTS syntax error.
    let err = session
        .search(&SearchRequest {
            query: "\"unclosed".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), "bad_search_query");
    assert!(
        err.to_string().contains("quotation mark is not closed"),
        "{err}"
    );
    // Searches are audited, failed ones too.
    let audit = session.audit_entries(0, 1000).unwrap();
    assert!(audit
        .iter()
        .any(|e| e.action == "search" && e.outcome == "failure" && e.detail.contains("unclosed")));
}

#[test]
fn editing_or_deleting_an_audit_entry_is_detected_and_named() {
    let tmp = tempfile::tempdir().unwrap();
    let service = keyring_service("audit");
    let clock = std::sync::Arc::new(outpost_workstation::ManualClock::new(START_MS));
    let ws = workstation_with(tmp.path(), &service, clock);
    let session = new_session(&ws, "yuri", "pw-yuri", 52);
    let doc = session
        .import_bytes(
            sample(SampleKind::PersonnelRecord, Language::English, 1, 1, None),
            "p.pdf",
        )
        .unwrap()
        .document()
        .clone();
    session.open_document(&doc.id).unwrap();
    search(&session, "personnel");
    let entries = session.audit_entries(0, 100).unwrap();
    let actions: Vec<_> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["vault_created", "import", "view", "search"]);
    assert_eq!(session.verify_audit_chain().unwrap().first_broken, None);
    session.lock().unwrap();

    // Open the database as an attacker with the raw key would.
    let paths = outpost_vault::VaultPaths::new(tmp.path(), "yuri").unwrap();
    let key = KeyFile::read(&paths.key_file())
        .unwrap()
        .unwrap_database_key("pw-yuri", &OsKeyring::new(&service))
        .unwrap();
    let raw = rusqlite::Connection::open(paths.database()).unwrap();
    raw.pragma_update(None, "key", format!("x'{}'", hex::encode(key.as_ref())))
        .unwrap();
    // The normal path cannot change an entry at all.
    let refused = raw.execute("UPDATE audit_log SET detail = 'x' WHERE seq = 3", []);
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    // Dropping the guard and editing entry 3 is detected, and entry 3 is named.
    raw.execute_batch(
        "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;
         UPDATE audit_log SET document_id = NULL WHERE seq = 3;",
    )
    .unwrap();
    drop(raw);
    let session = ws.unlock("yuri", "pw-yuri", rng(53)).unwrap();
    let report = session.verify_audit_chain().unwrap();
    let broken = report.first_broken.expect("tampering must be detected");
    assert_eq!(broken.seq, 3);
    assert!(broken.reason.contains("changed"), "{}", broken.reason);
    drop(session);

    // Deleting an entry is named as a gap.
    let raw = rusqlite::Connection::open(paths.database()).unwrap();
    raw.pragma_update(None, "key", format!("x'{}'", hex::encode(key.as_ref())))
        .unwrap();
    raw.execute("DELETE FROM audit_log WHERE seq = 2", [])
        .unwrap();
    drop(raw);
    let session = ws.unlock("yuri", "pw-yuri", rng(54)).unwrap();
    let broken = session.verify_audit_chain().unwrap().first_broken.unwrap();
    assert_eq!(broken.seq, 2);
    assert!(broken.reason.contains("missing"), "{}", broken.reason);
}
