//! Writing an output file: never over one of the command's inputs, never onto something
//! that is not a regular file, always whole or not at all, and no temporary file left
//! behind by a crash, a kill or a full disk.
//!
//! Over 500 lines on purpose: every write's guarantees (destination checks, anonymous
//! temporaries, signals, stale-file clearing) are one mechanism, tested together.
//!
//! Every file the tools write (manifests, caches, charts, checkpoints, sample grids)
//! goes through [`check_destination`] and [`AtomicFile`].
//!
//! On Linux the data goes into an anonymous file (`O_TMPFILE`) in the destination's
//! directory, which the kernel discards when the process ends however it ends; only when
//! it is complete does it get a name (`linkat` through `/proc/self/fd`), for the moment
//! before the rename over the destination. `tempfile` makes such files but cannot name
//! them, so those two system calls are written here. Where `O_TMPFILE` is unavailable (other
//! systems, some file systems) a named temporary file is used: it is removed when dropped,
//! on SIGINT, SIGTERM and SIGHUP, and a later write to the same directory removes those
//! that a killed process (SIGKILL) left.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

use crate::pipe::{PipeWriter, WritebackFile};

/// Prefix of every temporary name, with the writer's process id after it:
/// `.balance-split-<pid>-<random>.tmp`.
const PREFIX: &str = ".balance-split-";
const SUFFIX: &str = ".tmp";

/// Why an output cannot go where it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum DestinationError {
    #[error("{out}: refusing to overwrite an input file ({input}); choose another output")]
    IsInput { out: PathBuf, input: PathBuf },
    #[error("{out}: refusing to replace {kind} with a regular file; choose a file path")]
    NotARegularFile { out: PathBuf, kind: &'static str },
    #[error("{out}: {blocker} is a file, not a folder; choose another output folder")]
    NotAFolder { out: PathBuf, blocker: PathBuf },
}

/// Writing an output failed: the environment (a full disk, a read-only folder), not the
/// user's input.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot write {what}: {source}")]
pub struct WriteError {
    pub path: PathBuf,
    /// What the file is ("manifest", "split file").
    pub what: &'static str,
    pub source: io::Error,
}

/// Refuses an output path that is one of `inputs` (the same file, by device and inode, so
/// through symlinks and hard links too), one of the run's [`protect`]ed inputs, or that
/// exists as something other than a regular file (a directory, a FIFO, a device such as
/// `/dev/null`, which a rename would replace). Temporary files a killed writer left in its
/// directory are cleared on the way ([`clear_stale_once`]), so any command that checks a
/// destination there, a dry run included, clears them.
pub fn check_destination(out: &Path, inputs: &[&Path]) -> Result<(), DestinationError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    // The nearest existing folder above must be one: a file there (`--out` naming a file)
    // is the user's to change, not a failure of the disk.
    if let Some(blocker) = out
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .find(|a| fs::metadata(a).is_ok())
        .filter(|a| !a.is_dir())
    {
        return Err(DestinationError::NotAFolder {
            out: out.to_owned(),
            blocker: blocker.to_owned(),
        });
    }
    clear_stale_once(parent_of(out));
    let Ok(meta) = fs::metadata(out) else {
        return Ok(());
    };
    let t = meta.file_type();
    let kind = if t.is_dir() {
        Some("a directory")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        None
    };
    if let Some(kind) = kind {
        return Err(DestinationError::NotARegularFile {
            out: out.to_owned(),
            kind,
        });
    }
    for input in inputs {
        if let Ok(m) = fs::metadata(input) {
            if (m.dev(), m.ino()) == (meta.dev(), meta.ino()) {
                return Err(DestinationError::IsInput {
                    out: out.to_owned(),
                    input: input.to_path_buf(),
                });
            }
        }
    }
    let protected = PROTECTED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((input, _)) = protected
        .iter()
        .find(|(_, id)| *id == (meta.dev(), meta.ino()))
    {
        return Err(DestinationError::IsInput {
            out: out.to_owned(),
            input: input.clone(),
        });
    }
    Ok(())
}

/// The inputs of the run (path, device and inode) no output may replace. A process-wide
/// list because a long job (the trainer) writes from many places (checkpoints, grids,
/// exports, logs, event files), and every one of them ends in [`AtomicFile::commit`] or
/// [`open_append`], which consult it: one registration at the start covers them all.
static PROTECTED: Mutex<Vec<(PathBuf, (u64, u64))>> = Mutex::new(Vec::new());

/// Registers `paths` (those that exist) as inputs no output of this process may replace.
pub fn protect(paths: &[&Path]) {
    use std::os::unix::fs::MetadataExt;
    let mut list = PROTECTED.lock().unwrap_or_else(|e| e.into_inner());
    for p in paths {
        if let Ok(m) = fs::metadata(p) {
            list.push((p.to_path_buf(), (m.dev(), m.ino())));
        }
    }
}

/// Opens `path` to append to it (a log, a metrics table, an event file), after the same
/// checks as every other output: not an input, not a FIFO, device or directory (a FIFO
/// without a reader would block the run forever).
pub fn open_append(path: &Path) -> io::Result<File> {
    check_destination(path, &[]).map_err(|e| io::Error::other(e.to_string()))?;
    fs::OpenOptions::new().create(true).append(true).open(path)
}

/// [`clear_stale_once`] in the directory of `out`: for the runs that check nothing there
/// (a dry run of `balance`), so that every command that could write into a folder clears
/// what a killed writer left in it.
pub fn clear_stale_beside(out: &Path) {
    clear_stale_once(parent_of(out));
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// A file being written in the destination's directory, invisible at the destination
/// until [`AtomicFile::commit`]. Dropped uncommitted, it leaves nothing.
pub struct AtomicFile {
    file: File,
    dest: PathBuf,
    dir: PathBuf,
    /// `None` for an anonymous (`O_TMPFILE`) file; the temporary name otherwise.
    named: Option<PathBuf>,
}

impl AtomicFile {
    /// Starts a file for `dest`, creating its directory if missing. The file gets mode
    /// 0644 less the umask, as files the user's own tools write.
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let dir = parent_of(dest).to_owned();
        fs::create_dir_all(&dir)?;
        clear_stale_once(&dir);
        // BALANCE_SPLIT_NAMED_TEMP=1 takes the portable path on Linux too (the kill tests
        // use it to check that path's clean-up with real signals).
        let anonymous = match std::env::var_os("BALANCE_SPLIT_NAMED_TEMP") {
            Some(_) => None,
            None => anonymous(&dir),
        };
        let (file, named) = match anonymous {
            Some(file) => (file, None),
            None => named(&dir).map(|(file, path)| (file, Some(path)))?,
        };
        Ok(AtomicFile {
            file,
            dest: dest.to_owned(),
            dir,
            named,
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Puts the file at the destination in one rename, replacing what was there. With
    /// `fsync` its data reaches stable storage first (a power cut then cannot leave an
    /// empty file under the destination's name).
    pub fn commit(mut self, fsync: bool) -> io::Result<()> {
        // Checked here, at the last moment, for every writer: an output path that became
        // (or always was) an input or a special file is not replaced.
        check_destination(&self.dest, &[]).map_err(|e| io::Error::other(e.to_string()))?;
        if fsync {
            self.file.sync_all()?;
        }
        let tmp = match self.named.take() {
            Some(p) => p,
            None => {
                let p = self.dir.join(temp_name());
                link_anonymous(&self.file, &p)?;
                p
            }
        };
        let renamed = fs::rename(&tmp, &self.dest);
        if renamed.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        forget(&tmp);
        renamed
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(p) = self.named.take() {
            let _ = fs::remove_file(&p);
            forget(&p);
        }
    }
}

impl io::Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes `bytes` to `dest` through an [`AtomicFile`].
pub fn write_bytes(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes)?;
    f.commit(false)
}

/// Writes the output through an [`AtomicFile`], so no reader
/// ever sees a partial manifest: if the process dies or the disk fills, an existing
/// manifest stays as it was and no temporary file is left.
///
/// With `fsync`, the data also reaches stable storage before the rename, so even a power
/// cut cannot leave a renamed but empty file; writeback then starts chunk by chunk while
/// formatting continues. It is off by default: a manifest is reproducible from its inputs
/// (`balance-split verify`), and the wait is the disk's, not ours (0.1 to 0.4 s for a
/// 10-million-entry manifest on our machines, with seconds of variance).
pub fn write_atomically(
    path: &Path,
    fsync: bool,
    body: impl FnOnce(&mut PipeWriter) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    write_file_atomically(path, "manifest", fsync, body)
}

/// [`write_atomically`] for any output; `what` names it in the error message.
pub fn write_file_atomically(
    path: &Path,
    what: &'static str,
    fsync: bool,
    body: impl FnOnce(&mut PipeWriter) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    let err = |source| WriteError {
        path: path.to_owned(),
        what,
        source,
    };
    let out = AtomicFile::create(path).map_err(err)?;
    let file = out.file().try_clone().map_err(err)?;
    let mut w = if fsync {
        PipeWriter::new(WritebackFile::new(file))
    } else {
        PipeWriter::new(file)
    };
    let written = body(&mut w);
    // On error `out` is dropped, which leaves nothing behind.
    written.and_then(|()| w.finish()).map_err(err)?;
    out.commit(fsync).map_err(err)
}

fn temp_name() -> String {
    let mut r = [0u8; 6];
    // Uniqueness within the directory is what matters; a failure to get randomness
    // leaves the process id and a counter.
    let _ = getrandom::fill(&mut r);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let hex: String = r.iter().map(|b| format!("{b:02x}")).collect();
    format!("{PREFIX}{}-{hex}{n}{SUFFIX}", std::process::id())
}

#[cfg(target_os = "linux")]
fn anonymous(dir: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Naming it later goes through /proc; without /proc, take the named path at once.
    if !Path::new("/proc/self/fd").is_dir() {
        return None;
    }
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_TMPFILE)
        .open(dir)
        .ok()
}

#[cfg(not(target_os = "linux"))]
fn anonymous(_dir: &Path) -> Option<File> {
    None
}

#[cfg(target_os = "linux")]
fn link_anonymous(file: &File, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let from =
        CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("no NUL in a number");
    let to = CString::new(to.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: two valid NUL-terminated paths; linkat reads them and nothing else of ours.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn link_anonymous(_file: &File, _to: &Path) -> io::Result<()> {
    unreachable!("anonymous files exist only on Linux")
}

fn named(dir: &Path) -> io::Result<(File, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    install_signal_cleanup();
    loop {
        let path = dir.join(temp_name());
        // Registered before it exists, so a signal between the two cannot miss it.
        remember(&path);
        match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&path)
        {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => forget(&path),
            Err(e) => {
                forget(&path);
                return Err(e);
            }
        }
    }
}

/// Named temporary files of this process, for the signal handler to remove.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn remember(p: &Path) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(p.to_owned());
}

fn forget(p: &Path) {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|q| q != p);
}

/// Whether writing a file installs the signal cleanup below. A program that embeds the
/// library and owns its signals (the Python package: Ctrl-C must stay a
/// `KeyboardInterrupt`) turns it off before it writes anything.
static SIGNAL_CLEANUP: AtomicBool = AtomicBool::new(true);

/// Turns the signal cleanup on or off (see `SIGNAL_CLEANUP`).
pub fn set_signal_cleanup(on: bool) {
    SIGNAL_CLEANUP.store(on, Ordering::Relaxed);
}

/// On SIGINT, SIGTERM or SIGHUP: remove this process's temporary files, then die of the
/// signal as if no handler had been installed (the same exit status a shell sees).
fn install_signal_cleanup() {
    if !SIGNAL_CLEANUP.load(Ordering::Relaxed) {
        return;
    }
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                for p in LIVE.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
                    let _ = fs::remove_file(p);
                }
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                std::process::exit(128 + sig);
            }
        });
    });
}

/// Clears stale temps the first time this process writes into (or checks a destination in)
/// `dir`: once per directory, so a job writing 100,000 files into one folder reads it once,
/// not once per file.
pub fn clear_stale_once(dir: &Path) {
    static CLEARED: Mutex<Option<std::collections::HashSet<PathBuf>>> = Mutex::new(None);
    let key = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let first = CLEARED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(Default::default)
        .insert(key);
    if first {
        clear_stale(dir);
    }
}

/// Removes `.balance-split-<pid>-*.tmp` files in `dir` whose process is gone: what a
/// SIGKILL, a power cut or an older version left. Another live process's files are kept.
fn clear_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .filter(|n| n.ends_with(SUFFIX))
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid > 0 && !alive(pid) {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn nothing_is_visible_until_commit_and_nothing_is_left_after() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub/out.json");
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::write(&dest, b"old").unwrap();
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"new bytes").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"old");
        assert_eq!(names(dest.parent().unwrap()), ["out.json"]);
        f.commit(true).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new bytes");
        assert_eq!(names(dest.parent().unwrap()), ["out.json"]);
        // Dropped without commit: the old file stays, no temporary remains.
        let mut f = AtomicFile::create(&dest).unwrap();
        f.write_all(b"abandoned").unwrap();
        drop(f);
        assert_eq!(fs::read(&dest).unwrap(), b"new bytes");
        assert_eq!(names(dest.parent().unwrap()), ["out.json"]);
    }

    #[test]
    fn the_named_fallback_cleans_up_too() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, path) = named(dir.path()).unwrap();
        f.write_all(b"x").unwrap();
        let a = AtomicFile {
            file: f,
            dest: dir.path().join("out"),
            dir: dir.path().to_owned(),
            named: Some(path.clone()),
        };
        assert!(path.exists());
        drop(a);
        assert_eq!(names(dir.path()), Vec::<String>::new());
        assert!(LIVE.lock().unwrap().iter().all(|p| p != &path));
    }

    #[test]
    fn stale_temporaries_of_dead_processes_are_cleared_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // No process has pid 2^22 + 1 (above Linux's pid_max limit).
        let dead = format!("{PREFIX}4194305-abc{SUFFIX}");
        let mine = format!("{PREFIX}{}-abc{SUFFIX}", std::process::id());
        for n in [&dead, &mine, &"keep.json".to_string()] {
            fs::write(dir.path().join(n), b"x").unwrap();
        }
        clear_stale(dir.path());
        let mut want = vec![mine.clone(), "keep.json".to_string()];
        want.sort();
        assert_eq!(names(dir.path()), want);
    }

    #[test]
    fn destinations_that_are_inputs_or_not_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("split.json");
        fs::write(&input, b"{}").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        let hard = dir.path().join("hard.json");
        fs::hard_link(&input, &hard).unwrap();
        for out in [&input, &link, &hard] {
            let e = check_destination(out, &[&input]).unwrap_err();
            assert!(matches!(e, DestinationError::IsInput { .. }), "{e}");
        }
        assert_eq!(
            check_destination(Path::new("/dev/null"), &[])
                .unwrap_err()
                .to_string(),
            "/dev/null: refusing to replace a device with a regular file; choose a file path"
        );
        assert!(check_destination(dir.path(), &[]).is_err());
        assert!(check_destination(&dir.path().join("new.json"), &[&input]).is_ok());
        assert!(check_destination(&dir.path().join("other.json"), &[&input]).is_ok());
    }
}
