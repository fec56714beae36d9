//! Signing with a key on a PKCS #11 token, tested against SoftHSM2: the key never leaves the
//! token, the signature validates, and a wrong PIN or a missing token is refused with its own
//! error while the document stays untouched.

mod common;
#[path = "../../outpost-pdf/tests/common/mod.rs"]
#[allow(unused_imports)]
mod judges;

use std::path::Path;

use common::*;
use outpost_workstation::{
    list_tokens, token_keys, Language, SampleKind, SignOptions, TokenChoice, SOFTHSM2_MODULE,
};

const PIN: &str = "1234";

#[test]
fn a_token_key_signs_and_a_wrong_pin_or_missing_token_leaves_the_document_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = judges::TestPki::new();
    // Only this test runs in this process (nextest gives every test its own).
    std::env::set_var("SOFTHSM2_CONF", pki.softhsm_token(tmp.path(), PIN));
    let module = Path::new(SOFTHSM2_MODULE);

    let tokens = list_tokens(module).unwrap();
    let token = tokens
        .iter()
        .find(|t| t.label == "Outpost Test")
        .expect("the test token");
    let keys = token_keys(module, token.slot, PIN).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, "01");
    assert!(keys[0].subject.contains("Token Holder"), "{:?}", keys[0]);

    let (ws, clock) = workstation(&tmp.path().join("data"), "token");
    let session = new_session(&ws, "gleb", "pw-gleb", 91);
    session
        .add_trust_anchor(&std::fs::read(pki.path("ca.crt")).unwrap())
        .unwrap();
    let doc = session
        .import_bytes(
            sample(SampleKind::PersonnelRecord, Language::Russian, 1, 5, None),
            "record.pdf",
        )
        .unwrap()
        .document()
        .id
        .clone();
    clock.set(real_now_ms());
    let options = SignOptions::invisible(String::new(), "Подписано токеном");
    let choice = |pin: &str, slot: u64| TokenChoice {
        module: module.to_owned(),
        slot,
        key_id: "01".into(),
        pin: pin.into(),
    };

    let wrong = session
        .sign_document_with_token(&doc, &choice("0000", token.slot), &options)
        .unwrap_err();
    assert_eq!(wrong.code(), "token_wrong_pin", "{wrong}");
    let missing = session
        .sign_document_with_token(&doc, &choice(PIN, token.slot + 1000), &options)
        .unwrap_err();
    assert_eq!(missing.code(), "token_removed", "{missing}");
    assert!(
        session.validate_document(&doc).unwrap().is_empty(),
        "still unsigned"
    );

    let outcome = session
        .sign_document_with_token(&doc, &choice(PIN, token.slot), &options)
        .unwrap();
    assert_eq!(outcome.revision, 1);
    assert_one_valid_signature(&session, &doc);
    let copy = tmp.path().join("signed-with-token.pdf");
    session.export_with_annotations(&doc, &copy).unwrap();
    pki.assert_judges_accept(&copy, 1);
    let facts = judges::signature_facts(&copy);
    assert_eq!(
        facts[0]["certificates"], 2,
        "the token's certificate and its issuer from the vault"
    );

    // A batch with the token: the PIN once, both cores, every document signed and valid, and the
    // batch records which token key signed it. With a wrong PIN nothing is signed or recorded.
    let batch_documents: Vec<_> = (2..5)
        .map(|n| {
            session
                .import_bytes(
                    sample(
                        SampleKind::ProcurementContract,
                        Language::English,
                        2,
                        n,
                        None,
                    ),
                    &format!("contract-{n}.pdf"),
                )
                .unwrap()
                .document()
                .id
                .clone()
        })
        .collect();
    let batch = |batch_id: &str, pin: &str| outpost_workstation::BatchRequest {
        batch_id: batch_id.into(),
        documents: batch_documents.clone(),
        options: SignOptions::invisible(String::new(), "Batch on the token"),
        parallelism: 2,
        token: Some(choice(pin, token.slot)),
    };
    let never = std::sync::atomic::AtomicBool::new(false);
    let refused = session
        .sign_batch(&batch("token-batch-wrong-pin", "0000"), &|_| {}, &never)
        .unwrap_err();
    assert_eq!(refused.code(), "token_wrong_pin", "{refused}");
    assert_eq!(
        session.signing_batch("token-batch-wrong-pin").unwrap(),
        None
    );
    for document in &batch_documents {
        assert!(session.validate_document(document).unwrap().is_empty());
    }
    let report = session
        .sign_batch(&batch("token-batch", PIN), &|_| {}, &never)
        .unwrap();
    assert_eq!((report.signed, report.failed.len()), (3, 0), "{report:?}");
    for (n, document) in batch_documents.iter().enumerate() {
        assert_one_valid_signature(&session, document);
        let copy = tmp.path().join(format!("batch-{n}.pdf"));
        session.export_with_annotations(document, &copy).unwrap();
        pki.assert_judges_accept(&copy, 1);
    }
    let recorded = session.signing_batch("token-batch").unwrap().unwrap();
    assert_eq!(
        recorded.key,
        format!("pkcs11:slot-id={};id=%01", token.slot),
        "the token key, as a PKCS #11 URI"
    );
    assert_eq!(
        (recorded.total, recorded.reason.as_str()),
        (3, "Batch on the token")
    );

    // The token is pulled out after the batch's first document (SoftHSM2's storage goes away;
    // it then answers that the key's handle is invalid): that one stays signed, every other
    // fails as "token removed" (not as a signing failure) and stays untouched.
    let later: Vec<_> = (5..8)
        .map(|n| {
            session
                .import_bytes(
                    sample(SampleKind::OperationalReport, Language::English, 1, n, None),
                    &format!("report-{n}.pdf"),
                )
                .unwrap()
                .document()
                .id
                .clone()
        })
        .collect();
    let pulled_out = outpost_workstation::BatchRequest {
        batch_id: "token-pulled-out".into(),
        documents: later.clone(),
        options: SignOptions::invisible(String::new(), "Batch on the token"),
        parallelism: 1,
        token: Some(choice(PIN, token.slot)),
    };
    let tokens = tmp.path().join("tokens");
    let codes = std::sync::Mutex::new(Vec::new());
    let report = session
        .sign_batch(
            &pulled_out,
            &|progress| {
                if progress.done == 1 {
                    std::fs::remove_dir_all(&tokens).unwrap();
                }
                if let outpost_workstation::BatchItemResult::Failed { code, .. } = progress.result {
                    codes.lock().unwrap().push(code);
                }
            },
            &never,
        )
        .unwrap();
    assert_eq!((report.signed, report.failed.len()), (1, 2), "{report:?}");
    assert_eq!(codes.into_inner().unwrap(), ["token_removed"; 2]);
    assert_one_valid_signature(&session, &later[0]);
    for (document, reason) in &report.failed {
        assert!(reason.starts_with("the token is not present"), "{reason}");
        assert!(session.validate_document(document).unwrap().is_empty());
    }

    let no_module =
        outpost_workstation::list_tokens(Path::new("/nonexistent/libpkcs11.so")).unwrap_err();
    assert_eq!(no_module.code(), "token_module_missing");
}

#[test]
fn a_real_token_cannot_sign_in_the_tutorial_alone_or_in_a_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = judges::TestPki::new();
    std::env::set_var("SOFTHSM2_CONF", pki.softhsm_token(tmp.path(), PIN));
    let module = Path::new(SOFTHSM2_MODULE);
    let slot = list_tokens(module)
        .unwrap()
        .into_iter()
        .find(|t| t.label == "Outpost Test")
        .expect("the test token")
        .slot;
    let (ws, clock) = workstation(&tmp.path().join("data"), "token-tutorial");
    clock.set(real_now_ms());
    let sandbox = ws.open_tutorial("gleb", rng(92)).unwrap();
    let documents: Vec<_> = sandbox
        .documents()
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    let choice = TokenChoice {
        module: module.to_owned(),
        slot,
        key_id: "01".into(),
        pin: PIN.into(),
    };
    let options = SignOptions::invisible(String::new(), "practice");
    let refused = sandbox
        .sign_document_with_token(&documents[0], &choice, &options)
        .unwrap_err();
    assert_eq!(refused.code(), "training_boundary", "{refused}");
    assert!(refused.to_string().contains("hardware token"), "{refused}");
    // Refused before the token is opened: a wrong PIN is not even tried (a real card never
    // counts a PIN typed while practising).
    let wrong_pin = TokenChoice {
        pin: "0000".into(),
        ..choice.clone()
    };
    let refused = sandbox
        .sign_document_with_token(&documents[0], &wrong_pin, &options)
        .unwrap_err();
    assert_eq!(refused.code(), "training_boundary", "{refused}");
    let refused = sandbox
        .sign_batch(
            &outpost_workstation::BatchRequest {
                batch_id: "practice-batch".into(),
                documents: documents[..3].to_vec(),
                options,
                parallelism: 2,
                token: Some(choice),
            },
            &|_| {},
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap_err();
    assert_eq!(refused.code(), "training_boundary", "{refused}");
    for document in &documents[..3] {
        assert!(
            sandbox.validate_document(document).unwrap().is_empty(),
            "nothing was signed"
        );
    }
}
