//! Files only their owner may read (mode 0600): keys, passphrases, TOTP secrets.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `contents` to a new file at `path` that only its owner can read; an existing file is an
/// error unless `replace` is set.
pub fn write_private_file(path: &Path, contents: &[u8], replace: bool) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    options.open(path)?.write_all(contents)
}
