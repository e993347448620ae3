//! Every output file goes through here: written to a temporary beside the target and
//! renamed over it (a crash never leaves half a file), only over a regular file (never
//! a device, a directory or a fifo), and never over one of the command's inputs.
//!
//! Temporaries are named `.<name>.dlncheck-tmp-<pid>-<random>`; a writer that was
//! killed leaves one behind, and the next write to the same target removes those whose
//! process is gone.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

const TMP_MARK: &str = ".dlncheck-tmp-";

/// An output that cannot be written: which file and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {what}", path.display())]
pub struct OutputError {
    pub path: PathBuf,
    pub what: String,
}

type Result<T> = std::result::Result<T, OutputError>;

fn fail<T>(path: &Path, what: impl Into<String>) -> Result<T> {
    Err(OutputError { path: path.to_owned(), what: what.into() })
}

/// Refuses `path` as an output if it exists and is not a regular file, or if it is the
/// same file as one of `inputs`.
pub fn check_target(path: &Path, inputs: &[&Path]) -> Result<()> {
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() {
            return fail(
                path,
                "is not a regular file (a directory, device or pipe); outputs only replace regular files",
            );
        }
        if inputs.iter().any(|input| same_file(path, input)) {
            return fail(path, "is also an input of this command; write the output to another file");
        }
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Writes `path` atomically with the bytes `write` produces, after [`check_target`].
pub fn write_atomic(path: &Path, inputs: &[&Path], write: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    check_target(path, inputs)?;
    let err = |e: &dyn std::fmt::Display| OutputError { path: path.to_owned(), what: format!("cannot write: {e}") };
    let dir = parent(path);
    let Some(name) = path.file_name() else { return fail(path, "is not a file name") };
    let prefix = format!(".{}{TMP_MARK}{}-", name.to_string_lossy(), std::process::id());
    remove_stale_temporaries(&dir, &name.to_string_lossy());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    builder.permissions(permissions(path));
    let mut tmp = builder.tempfile_in(&dir).map_err(|e| err(&e))?;
    write(tmp.as_file_mut()).map_err(|e| err(&e))?;
    tmp.as_file_mut().flush().map_err(|e| err(&e))?;
    tmp.as_file().sync_all().map_err(|e| err(&e))?;
    tmp.persist(path).map_err(|e| err(&e))?;
    Ok(())
}

/// [`write_atomic`] of a byte string.
pub fn write_bytes(path: &Path, inputs: &[&Path], bytes: &[u8]) -> Result<()> {
    write_atomic(path, inputs, |f| f.write_all(bytes))
}

/// The mode of the written file: the replaced file's, or that of a new file (0666 less
/// the umask, which `open` applies), not the temporary file's private 0600.
#[cfg(unix)]
fn permissions(path: &Path) -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map_or_else(|_| std::fs::Permissions::from_mode(0o666), |m| m.permissions())
}

fn parent(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

/// Removes `.<name>.dlncheck-tmp-<pid>-*` in `dir` whose process no longer runs
/// (checked through /proc; where there is no /proc nothing is removed).
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let head = format!(".{name}{TMP_MARK}");
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&head) else { continue };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_inputs_and_special_files_and_cleans_stale_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("p.npz");
        std::fs::write(&input, b"x").unwrap();
        assert!(write_bytes(&input, &[&input], b"y").unwrap_err().what.contains("also an input"));
        assert_eq!(std::fs::read(&input).unwrap(), b"x");
        assert!(check_target(dir.path(), &[]).unwrap_err().what.contains("not a regular file"));
        if Path::new("/dev/null").exists() {
            assert!(check_target(Path::new("/dev/null"), &[]).is_err());
        }
        // A temporary of a process that is gone (pid beyond any pid_max) is removed.
        let stale = dir.path().join(format!(".out.txt{TMP_MARK}4294967295-abc"));
        std::fs::write(&stale, b"half").unwrap();
        write_bytes(&dir.path().join("out.txt"), &[], b"whole").unwrap();
        assert!(!stale.exists());
        assert_eq!(std::fs::read(dir.path().join("out.txt")).unwrap(), b"whole");
    }

    /// A new output gets the mode of any new file here (the umask applied), not the
    /// temporary's 0600; a replaced file keeps its mode.
    #[cfg(unix)]
    #[test]
    fn outputs_get_ordinary_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.txt");
        std::fs::write(&plain, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let out = dir.path().join("out.txt");
        write_bytes(&out, &[], b"y").unwrap();
        assert_eq!(mode(&out), mode(&plain));
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_bytes(&out, &[], b"z").unwrap();
        assert_eq!(mode(&out), 0o640);
    }
}
