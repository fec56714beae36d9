//! Search returns documents ranked by relevance, each at the first page that holds the query.

use std::sync::Arc;

use outpost_vault::{
    DocumentId, KdfParams, ManualClock, NewDocument, OsKeyring, SearchRequest, Vault, VaultPaths,
};
use rand::SeedableRng;

fn vault_with(docs: &[(&str, &[&str])]) -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let keyring = OsKeyring::new(format!("outpost-test-{:016x}", rand::random::<u64>()));
    let mut vault = Vault::create(
        &VaultPaths::new(dir.path(), "lena").unwrap(),
        "pw-lena",
        KdfParams::INSECURE_FAST_FOR_TESTS,
        &keyring,
        Arc::new(ManualClock::new(1_700_000_000_000)),
        &mut rand_chacha::ChaCha20Rng::seed_from_u64(3),
    )
    .unwrap();
    for (id, pages) in docs {
        let bytes = format!("%PDF-1.7 {id} %%EOF");
        vault
            .store_document(
                &NewDocument {
                    id: DocumentId((*id).into()),
                    bytes: bytes.as_bytes(),
                    sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes.as_bytes())),
                    title: format!("Document {id}"),
                    page_texts: pages.iter().map(|p| (*p).to_owned()).collect(),
                    source_name: format!("{id}.pdf"),
                },
                None,
            )
            .unwrap();
    }
    (dir, vault)
}

fn search(vault: &Vault, query: &str) -> Vec<(String, u32)> {
    vault
        .search(&SearchRequest {
            query: query.into(),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|h| (h.document_id.0, h.page_no))
        .collect()
}

#[test]
fn a_document_is_one_hit_at_the_page_that_holds_the_query() {
    let (_dir, vault) = vault_with(&[
        (
            "order",
            &[
                "приказ о назначении",
                "приказ вступает в силу",
                "приказ подписан начальником отдела кадров",
            ],
        ),
        ("memo", &["служебная записка", "прошу рассмотреть"]),
    ]);
    // Three pages mention the order: one result, at the only page that also names the signatory.
    assert_eq!(
        search(&vault, "приказ начальником"),
        vec![("order".to_owned(), 3)]
    );
    assert_eq!(
        search(&vault, "\"вступает в силу\""),
        vec![("order".to_owned(), 2)]
    );
    assert!(search(&vault, "приказ записка").is_empty());
}

#[test]
fn terms_spread_over_pages_find_the_document_at_the_first_page_with_one_of_them() {
    let (_dir, vault) = vault_with(&[(
        "contract",
        &[
            "procurement contract between the parties",
            "delivery schedule and acceptance",
            "payment terms: invoice within ten days",
        ],
    )]);
    let hits = vault
        .search(&SearchRequest {
            query: "contract invoice".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(hits.len(), 1);
    assert!(
        [1, 3].contains(&hits[0].page_no),
        "page {}",
        hits[0].page_no
    );
    assert!(hits[0].snippet.iter().any(|p| p.highlighted));
}

#[test]
fn the_more_relevant_document_ranks_first() {
    let (_dir, vault) = vault_with(&[
        (
            "passing",
            &["a report that mentions the generator once among many other words here"],
        ),
        (
            "focused",
            &["generator generator maintenance: the generator was serviced"],
        ),
    ]);
    let hits = search(&vault, "generator");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].0, "focused");
}

#[test]
fn a_prefix_finds_every_form_of_a_word_in_either_case() {
    let (_dir, vault) = vault_with(&[
        ("a", &["Аттестация пройдена успешно"]),
        ("b", &["по итогам аттестации присвоен разряд"]),
        ("c", &["аттестат о среднем образовании"]),
        ("d", &["ёлка и йод"]),
    ]);
    let mut found: Vec<String> = search(&vault, "АТТЕСТАЦ*")
        .into_iter()
        .map(|h| h.0)
        .collect();
    found.sort();
    assert_eq!(found, vec!["a", "b"]);
    let mut found: Vec<String> = search(&vault, "аттеста*")
        .into_iter()
        .map(|h| h.0)
        .collect();
    found.sort();
    assert_eq!(found, vec!["a", "b", "c"]);
    // The index folds ё and й; a prefix typed with them still finds the words.
    assert_eq!(search(&vault, "ёл*"), vec![("d".to_owned(), 1)]);
    assert_eq!(search(&vault, "йо*"), vec![("d".to_owned(), 1)]);
    assert!(search(&vault, "нет*").is_empty());
}

#[test]
fn a_purged_document_leaves_nothing_behind_to_find() {
    let (_dir, mut vault) = vault_with(&[
        ("revoked", &["кракозябра в приказе", "вторая страница"]),
        ("kept", &["приказ о назначении"]),
    ]);
    assert_eq!(
        search(&vault, "кракозябра"),
        vec![("revoked".to_owned(), 1)]
    );
    let revoked = DocumentId("revoked".into());

    let purged = vault
        .purge_document(&revoked, "assignment revoked by the server")
        .unwrap();
    assert_eq!(purged.title, "Document revoked");
    // Not listed, not found by a word, a phrase or a prefix; the other document is untouched.
    let ids: Vec<String> = vault
        .documents()
        .unwrap()
        .into_iter()
        .map(|d| d.id.0)
        .collect();
    assert_eq!(ids, vec!["kept".to_owned()]);
    assert!(search(&vault, "кракозябра").is_empty());
    assert!(search(&vault, "кракоз*").is_empty());
    assert!(search(&vault, "\"вторая страница\"").is_empty());
    assert_eq!(search(&vault, "приказ"), vec![("kept".to_owned(), 1)]);
    assert!(matches!(
        vault.document(&revoked),
        Err(outpost_vault::VaultError::DocumentNotFound(_))
    ));
    // Purging again is a clear error that changes nothing.
    assert!(matches!(
        vault.purge_document(&revoked, "again"),
        Err(outpost_vault::VaultError::DocumentNotFound(_))
    ));
    // The purge is in the audit chain with its reason, and the chain still verifies.
    let entries = vault.audit_entries(0, 1000).unwrap();
    let purges: Vec<_> = entries.iter().filter(|e| e.action == "purge").collect();
    assert_eq!(purges.len(), 1);
    assert_eq!(purges[0].document_id.as_deref(), Some("revoked"));
    assert_eq!(purges[0].detail, "assignment revoked by the server");
    assert!(vault.verify_audit_chain().unwrap().first_broken.is_none());
}

#[test]
fn merged_indexes_find_the_same_and_still_forget_a_purged_document() {
    let (_dir, mut vault) = vault_with(&[
        ("revoked", &["кракозябра в приказе", "вторая страница"]),
        ("kept", &["приказ о назначении"]),
        ("other", &["duty shift report", "приказ"]),
    ]);
    let before: Vec<_> = ["приказ", "кракоз*", "\"duty shift\""]
        .iter()
        .map(|q| search(&vault, q))
        .collect();
    vault.merge_search_index().unwrap();
    let after: Vec<_> = ["приказ", "кракоз*", "\"duty shift\""]
        .iter()
        .map(|q| search(&vault, q))
        .collect();
    assert_eq!(after, before);
    assert_eq!(before[1], vec![("revoked".to_owned(), 1)]);

    // A purge after the merge still takes the document out of both indexes.
    vault
        .purge_document(&DocumentId("revoked".into()), "assignment revoked")
        .unwrap();
    assert!(search(&vault, "кракозябра").is_empty());
    assert!(search(&vault, "кракоз*").is_empty());
    assert!(search(&vault, "\"вторая страница\"").is_empty());
    assert_eq!(search(&vault, "приказ").len(), 2);
}
