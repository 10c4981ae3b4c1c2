//! A task's output: the two files its stdout and stderr are appended to, read back as a
//! stream of chunks, optionally following them until the task exits.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use crate::driver::{DriverError, LogChunks, LogStream};

const POLL: Duration = Duration::from_millis(200);
const CHUNK: usize = 64 * 1024;

/// Where a task's output goes: `<dir>/<task>.stdout` and `<dir>/<task>.stderr`.
#[derive(Debug, Clone)]
pub struct LogFiles {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl LogFiles {
    pub fn in_dir(dir: &Path, task: &str) -> LogFiles {
        // Task names are free text; keep them from leaving the directory.
        let stem: String = task
            .chars()
            .map(|c| match c {
                'A'..='Z' | 'a'..='z' | '0'..='9' | '_' | '-' | '.' => c,
                _ => '_',
            })
            .collect();
        LogFiles {
            stdout: dir.join(format!("{stem}.stdout")),
            stderr: dir.join(format!("{stem}.stderr")),
        }
    }

    /// Both files opened for appending (created if need be), for a new process.
    pub fn open_for_append(&self) -> std::io::Result<(std::fs::File, std::fs::File)> {
        let open = |path: &Path| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
        };
        Ok((open(&self.stdout)?, open(&self.stderr)?))
    }
}

/// The files' content (from the last `tail` lines of each when given), then with
/// `follow` what is appended until `alive` turns false.
pub fn stream(
    files: LogFiles,
    tail: Option<usize>,
    follow: bool,
    alive: impl Fn() -> bool + Send + 'static,
) -> LogChunks {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut readers = [
            Reader::new(LogStream::Stdout, files.stdout, tail).await,
            Reader::new(LogStream::Stderr, files.stderr, tail).await,
        ];
        let _ = pump(&mut readers, follow, alive, &tx).await;
    });
    Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

type Sender = mpsc::Sender<Result<(LogStream, Bytes), DriverError>>;

/// The reader went away.
struct Closed;

async fn pump(
    readers: &mut [Reader],
    follow: bool,
    alive: impl Fn() -> bool,
    tx: &Sender,
) -> Result<(), Closed> {
    loop {
        // Look before reading: what the task wrote before it exited is still sent.
        let still_alive = follow && alive();
        for reader in readers.iter_mut() {
            reader.send_new(tx).await?;
        }
        if !still_alive {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One file, read from `offset` on.
struct Reader {
    stream: LogStream,
    path: PathBuf,
    offset: u64,
}

impl Reader {
    async fn new(stream: LogStream, path: PathBuf, tail: Option<usize>) -> Reader {
        let offset = match tail {
            Some(lines) => tail_offset(&path, lines).await.unwrap_or(0),
            None => 0,
        };
        Reader {
            stream,
            path,
            offset,
        }
    }

    /// Sends what was appended since the last call. A missing file is empty; a file
    /// that shrank was truncated and is read again from its start.
    async fn send_new(&mut self, tx: &Sender) -> Result<(), Closed> {
        let Ok(mut file) = tokio::fs::File::open(&self.path).await else {
            return Ok(());
        };
        if file.metadata().await.is_ok_and(|m| m.len() < self.offset) {
            self.offset = 0;
        }
        if let Err(err) = file.seek(SeekFrom::Start(self.offset)).await {
            return self.send_error(tx, err).await;
        }
        let mut buf = vec![0; CHUNK];
        loop {
            match file.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    self.offset += n as u64;
                    let chunk = Bytes::copy_from_slice(&buf[..n]);
                    tx.send(Ok((self.stream, chunk)))
                        .await
                        .map_err(|_| Closed)?;
                }
                Err(err) => return self.send_error(tx, err).await,
            }
        }
    }

    async fn send_error(&self, tx: &Sender, err: std::io::Error) -> Result<(), Closed> {
        let message = format!("reading {}: {err}", self.path.display());
        tx.send(Err(DriverError::Engine(message)))
            .await
            .map_err(|_| Closed)
    }
}

/// Where the last `lines` lines of the file start, reading it backwards by chunks. A
/// final line without its newline counts as a line.
async fn tail_offset(path: &Path, lines: usize) -> std::io::Result<u64> {
    let mut file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    if lines == 0 {
        return Ok(len);
    }
    let mut end = len;
    let mut seen = 0;
    let mut buf = vec![0; CHUNK];
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let block = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start)).await?;
        file.read_exact(block).await?;
        for (i, &byte) in block.iter().enumerate().rev() {
            let at = start + i as u64;
            // The newline ending the file's last line starts no line.
            if byte == b'\n' && at + 1 != len {
                seen += 1;
                if seen == lines {
                    return Ok(at + 1);
                }
            }
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn tail_of(content: &str, lines: usize) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        let offset = tail_offset(&path, lines).await.unwrap() as usize;
        content[offset..].to_string()
    }

    #[tokio::test]
    async fn tail_lines() {
        assert_eq!(tail_of("a\nb\nc\n", 2).await, "b\nc\n");
        assert_eq!(tail_of("a\nb\nc", 2).await, "b\nc");
        assert_eq!(tail_of("a\nb\n", 5).await, "a\nb\n");
        assert_eq!(tail_of("a\nb\n", 0).await, "");
        assert_eq!(tail_of("", 3).await, "");
        let long: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(tail_of(&long, 2).await, "line 19998\nline 19999\n");
    }

    #[test]
    fn file_names_stay_in_the_directory() {
        let files = LogFiles::in_dir(Path::new("/a"), "../web/x");
        assert_eq!(files.stdout, Path::new("/a/.._web_x.stdout"));
        assert_eq!(files.stderr, Path::new("/a/.._web_x.stderr"));
    }
}
