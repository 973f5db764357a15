//! A buffered writer whose writes to the file happen on a second thread.
//!
//! Formatting a 10-million-entry manifest and copying it into the page cache are about
//! equally expensive; doing them on two cores halves the wall time. `BufWriter` cannot
//! overlap them and no well-kept crate offers this small piece, so it is written here:
//! full buffers go to the writer thread over a bounded channel (at most `DEPTH` in flight,
//! so memory stays bounded) and come back empty for reuse. The bytes written are exactly
//! the bytes given, in order; threads only change when they reach the file.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

const CHUNK: usize = 4 << 20;
const DEPTH: usize = 3;

/// See the module docs. Call [`PipeWriter::finish`] to flush and collect the write result.
pub struct PipeWriter {
    buf: Vec<u8>,
    full: Option<SyncSender<Vec<u8>>>,
    empty: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl PipeWriter {
    /// Starts the writer thread, which owns `sink` until [`PipeWriter::finish`].
    pub fn new<W: Write + Send + 'static>(mut sink: W) -> PipeWriter {
        let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(DEPTH);
        let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(DEPTH + 1);
        let thread = thread::spawn(move || -> io::Result<()> {
            for mut chunk in full_rx {
                sink.write_all(&chunk)?;
                chunk.clear();
                let _ = empty_tx.try_send(chunk);
            }
            sink.flush()
        });
        PipeWriter {
            buf: Vec::with_capacity(CHUNK),
            full: Some(full_tx),
            empty: empty_rx,
            thread: Some(thread),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let next = self
            .empty
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let chunk = std::mem::replace(&mut self.buf, next);
        let sender = self.full.as_ref().expect("not finished");
        if sender.send(chunk).is_err() {
            // The writer thread stopped: its error is the one to report.
            return Err(self
                .join()
                .err()
                .unwrap_or_else(|| io::Error::other("writer thread stopped")));
        }
        Ok(())
    }

    fn join(&mut self) -> io::Result<()> {
        self.full = None;
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| io::Error::other("writer thread panicked"))?,
            None => Ok(()),
        }
    }

    /// Writes what is buffered, waits for the writer thread, and returns its result.
    pub fn finish(mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.join()
    }
}

impl Write for PipeWriter {
    #[inline]
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    #[inline]
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        if self.buf.len() + data.len() > CHUNK && !self.buf.is_empty() {
            self.send()?;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Buffers are handed over when full or at [`PipeWriter::finish`]; a flush in between
    /// would only make chunks smaller.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// A file sink that asks the kernel to start writing each chunk to disk as soon as it is
/// written (Linux `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait). The
/// final `fsync` before the rename then only waits for the tail instead of the whole
/// manifest, so flushing overlaps with formatting.
pub struct WritebackFile {
    file: std::fs::File,
    offset: u64,
}

impl WritebackFile {
    pub fn new(file: std::fs::File) -> WritebackFile {
        WritebackFile { file, offset: 0 }
    }
}

impl Write for WritebackFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = self.file.write(data)?;
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a plain syscall on a file descriptor we own; it reads no memory of ours.
            // Its result is only a hint: failure changes nothing but speed, so it is ignored.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.offset as libc::off64_t,
                    n as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.offset += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn bytes_arrive_complete_and_in_order() {
        let sink = Shared::default();
        let mut w = PipeWriter::new(sink.clone());
        let mut expected = Vec::new();
        for i in 0..3_000_000u32 {
            let s = format!("{i},");
            w.write_all(s.as_bytes()).unwrap();
            expected.extend_from_slice(s.as_bytes());
        }
        let big = vec![7u8; CHUNK * 2 + 5];
        w.write_all(&big).unwrap();
        expected.extend_from_slice(&big);
        w.finish().unwrap();
        assert_eq!(*sink.0.lock().unwrap(), expected);
    }

    struct Failing;

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_is_reported() {
        let mut w = PipeWriter::new(Failing);
        let chunk = vec![0u8; CHUNK];
        let mut result = Ok(());
        for _ in 0..(DEPTH + 3) {
            result = w.write_all(&chunk);
            if result.is_err() {
                break;
            }
        }
        let err = result.and_then(|_| w.finish()).unwrap_err();
        assert_eq!(err.to_string(), "disk full");
    }
}
