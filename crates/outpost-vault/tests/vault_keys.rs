//! The vault's keys against a real Secret Service (run under scripts/with-keyring.sh).

use std::path::Path;
use std::sync::Arc;

use outpost_vault::{
    AuditAction, DeviceSecretStore, KdfParams, ManualClock, OsKeyring, Vault, VaultError,
    VaultPaths,
};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

fn keyring() -> OsKeyring {
    OsKeyring::new(format!("outpost-test-{:016x}", rand::random::<u64>()))
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(1_700_000_000_000))
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn file_hash(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn create(root: &Path, user: &str, password: &str, keyring: &OsKeyring, seed: u64) -> VaultPaths {
    let paths = VaultPaths::new(root, user).unwrap();
    Vault::create(
        &paths,
        password,
        KdfParams::INSECURE_FAST_FOR_TESTS,
        keyring,
        clock(),
        &mut rng(seed),
    )
    .unwrap();
    paths
}

#[test]
fn right_password_opens_and_wrong_password_is_refused_without_change() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let paths = create(dir.path(), "alice", "correct horse", &keyring, 1);
    let db_before = file_hash(&paths.database());
    let key_before = file_hash(&paths.key_file());

    let err = Vault::open(&paths, "wrong horse", &keyring, clock()).unwrap_err();
    assert!(
        matches!(err, VaultError::WrongPassword { ref user } if user == "alice"),
        "{err}"
    );
    assert_eq!(file_hash(&paths.database()), db_before);
    assert_eq!(file_hash(&paths.key_file()), key_before);

    let vault = Vault::open(&paths, "correct horse", &keyring, clock()).unwrap();
    // The failed attempt was carried into the audit chain at the next unlock.
    let entries = vault.audit_entries(0, 100).unwrap();
    let unlocks: Vec<_> = entries
        .iter()
        .filter(|e| e.action == AuditAction::Unlock.as_str())
        .map(|e| (e.outcome.as_str(), e.detail.as_str()))
        .collect();
    assert_eq!(
        unlocks,
        vec![("failure", "wrong password"), ("success", "")]
    );
    assert_eq!(vault.verify_audit_chain().unwrap().first_broken, None);
}

#[test]
fn missing_keyring_entry_is_its_own_error_and_harms_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let paths = create(dir.path(), "bob", "pw-bob-123", &keyring, 2);
    let account = outpost_vault::KeyFile::read(&paths.key_file())
        .unwrap()
        .keyring_account()
        .to_owned();
    let secret = keyring.load(&account).unwrap().expect("secret stored");
    keyring.delete(&account).unwrap();
    let db_before = file_hash(&paths.database());

    let err = Vault::open(&paths, "pw-bob-123", &keyring, clock()).unwrap_err();
    assert!(
        matches!(err, VaultError::DeviceSecretMissing { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("missing from the OS keyring"));
    assert_eq!(file_hash(&paths.database()), db_before);

    // Putting the secret back makes the vault usable again: nothing was destroyed.
    keyring.store(&account, &secret).unwrap();
    Vault::open(&paths, "pw-bob-123", &keyring, clock()).unwrap();
}

#[test]
fn corrupted_key_file_is_its_own_error_and_harms_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let paths = create(dir.path(), "carol", "pw-carol", &keyring, 3);
    let original = std::fs::read_to_string(paths.key_file()).unwrap();
    let db_before = file_hash(&paths.database());

    // One changed hex digit inside the wrapped key.
    let pos = original.find("\"ciphertext\": \"").unwrap() + 20;
    let mut damaged = original.clone().into_bytes();
    damaged[pos] = if damaged[pos] == b'0' { b'1' } else { b'0' };
    std::fs::write(paths.key_file(), &damaged).unwrap();
    let err = Vault::open(&paths, "pw-carol", &keyring, clock()).unwrap_err();
    assert!(
        matches!(err, VaultError::CorruptKeyFile { ref reason, .. } if reason.contains("checksum")),
        "{err}"
    );

    // A truncated file.
    std::fs::write(paths.key_file(), &original.as_bytes()[..original.len() / 2]).unwrap();
    let err = Vault::open(&paths, "pw-carol", &keyring, clock()).unwrap_err();
    assert!(matches!(err, VaultError::CorruptKeyFile { .. }), "{err}");

    assert_eq!(file_hash(&paths.database()), db_before);
    std::fs::write(paths.key_file(), &original).unwrap();
    Vault::open(&paths, "pw-carol", &keyring, clock()).unwrap();
}

#[test]
fn password_change_rewraps_without_touching_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let paths = create(dir.path(), "dave", "old-password", &keyring, 4);
    let db_before = file_hash(&paths.database());
    Vault::change_password(
        &paths,
        "old-password",
        "new-password",
        KdfParams::INSECURE_FAST_FOR_TESTS,
        &keyring,
        &mut rng(5),
    )
    .unwrap();
    assert_eq!(
        file_hash(&paths.database()),
        db_before,
        "a password change must not re-encrypt the database"
    );
    assert!(matches!(
        Vault::open(&paths, "old-password", &keyring, clock()).unwrap_err(),
        VaultError::WrongPassword { .. }
    ));
    Vault::open(&paths, "new-password", &keyring, clock()).unwrap();

    // A wrong old password changes nothing.
    let key_before = file_hash(&paths.key_file());
    let err = Vault::change_password(
        &paths,
        "not-the-password",
        "x",
        KdfParams::INSECURE_FAST_FOR_TESTS,
        &keyring,
        &mut rng(6),
    )
    .unwrap_err();
    assert!(matches!(err, VaultError::WrongPassword { .. }));
    assert_eq!(file_hash(&paths.key_file()), key_before);
}

#[test]
fn users_cannot_open_each_others_vaults() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let erin = create(dir.path(), "erin", "same-password", &keyring, 7);
    let frank = create(dir.path(), "frank", "same-password", &keyring, 8);
    assert_eq!(
        VaultPaths::users(dir.path()).unwrap(),
        vec!["erin".to_owned(), "frank".to_owned()]
    );
    // Even with the same password, frank's key file cannot open erin's database.
    std::fs::copy(frank.key_file(), erin.key_file()).unwrap();
    let err = Vault::open(&erin, "same-password", &keyring, clock()).unwrap_err();
    assert!(
        matches!(err, VaultError::CorruptKeyFile { ref reason, .. } if reason.contains("frank")),
        "{err}"
    );
    // And a vault folder is private to its OS user.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(frank.dir()).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "vault folder must not be readable by others"
        );
    }
}

#[test]
fn invalid_user_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["", "../etc", "Alice", "a/b", ".hidden"] {
        assert!(
            matches!(
                VaultPaths::new(dir.path(), bad),
                Err(VaultError::InvalidUserName(_))
            ),
            "{bad:?} should be refused"
        );
    }
}

#[test]
fn creating_over_an_existing_vault_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let paths = create(dir.path(), "gina", "pw", &keyring, 9);
    let err = Vault::create(
        &paths,
        "other",
        KdfParams::INSECURE_FAST_FOR_TESTS,
        &keyring,
        clock(),
        &mut rng(10),
    )
    .unwrap_err();
    assert!(matches!(err, VaultError::AlreadyExists { .. }));
    Vault::open(&paths, "pw", &keyring, clock()).unwrap();
}

#[test]
fn a_sandbox_and_a_real_vault_are_never_opened_as_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = keyring();
    let sandbox = VaultPaths::sandbox(dir.path(), "lena").unwrap();
    Vault::create(
        &sandbox,
        "practice-secret",
        KdfParams::INSECURE_FAST_FOR_TESTS,
        &keyring,
        clock(),
        &mut rng(31),
    )
    .unwrap();
    assert!(
        VaultPaths::users(dir.path()).unwrap().is_empty(),
        "a sandbox is not listed among the users"
    );
    // The sandbox moved to where the real vault of the same user would be.
    std::fs::create_dir_all(dir.path().join("vaults")).unwrap();
    std::fs::rename(sandbox.dir(), dir.path().join("vaults/lena")).unwrap();
    let real_paths = VaultPaths::new(dir.path(), "lena").unwrap();
    let before = file_hash(&real_paths.database());
    let refused = Vault::open(&real_paths, "practice-secret", &keyring, clock()).unwrap_err();
    assert!(
        matches!(refused, VaultError::WrongKind { .. }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("tutorial's practice vault"),
        "{refused}"
    );
    assert_eq!(before, file_hash(&real_paths.database()), "not modified");

    // A real vault put where the tutorial looks is refused by the tutorial.
    std::fs::remove_dir_all(dir.path().join("vaults/lena")).unwrap();
    create(dir.path(), "lena", "pw-lena", &keyring, 32);
    std::fs::create_dir_all(dir.path().join("tutorial")).unwrap();
    std::fs::rename(
        dir.path().join("vaults/lena"),
        dir.path().join("tutorial/lena"),
    )
    .unwrap();
    let refused = Vault::open(&sandbox, "pw-lena", &keyring, clock()).unwrap_err();
    assert!(
        refused.to_string().contains("holds real records"),
        "{refused}"
    );
}
