//! A log in a file: appends buffered until `sync` (one write and one
//! `fdatasync`), compaction by an atomic rename, and poisoning after any
//! failed write.

use crate::{Store, StoreError, refusal};
use scx_engine::log::{
    HEADER_BYTES, LOG_HEADER, Record, RecordKind, Recovered, TailDefect, decode_log, encode_log, encode_record,
    repaired_image,
};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// A file-backed store. Appends are buffered in memory and reach the file
/// only in [`Store::sync`], as one write followed by `fdatasync`; dropping
/// the store without syncing loses them, as a crash would. [`Store::replace`]
/// writes a temporary file beside the log, fsyncs it, renames it over the
/// log and fsyncs the directory.
///
/// After any failed write, fsync or compaction the file's state is unknown
/// (a partial write, or pages the kernel dropped), so the store is
/// *poisoned*: `append` and `sync` return [`StoreError::Poisoned`] until a
/// [`Store::load`] or [`Store::replace`] re-establishes the file's content.
/// One `FileStore` per path; there is no locking between processes.
pub struct FileStore {
    path: PathBuf,
    temp_path: PathBuf,
    file: File,
    unsynced: Vec<u8>,
    durable_len: u64,
    poisoned: bool,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .field("durable_bytes", &self.durable_len)
            .field("unsynced_bytes", &self.unsynced.len())
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { op, path: path.to_path_buf(), source }
}

impl FileStore {
    /// Opens the log at `path`, creating it (atomically, with its header) if
    /// it does not exist or holds only a torn header. Refuses a file that is
    /// not an SCX log with [`StoreError::BadHeader`], leaving it untouched.
    /// Call [`Store::load`] next to recover the records.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let temp_path = temp_path_for(&path)?;
        remove_stale_temp(&temp_path)?;
        match read_header(&path)? {
            None => write_atomically(&path, &temp_path, LOG_HEADER)?,
            Some(found) if found.len() < LOG_HEADER.len() && LOG_HEADER.starts_with(&found) => {
                write_atomically(&path, &temp_path, LOG_HEADER)?;
            }
            Some(found) if found != LOG_HEADER => return Err(StoreError::BadHeader { path, found }),
            Some(_) => {}
        }
        let file = open_log(&path)?;
        let durable_len = file.metadata().map_err(io_error("stat", &path))?.len();
        Ok(Self { path, temp_path, file, unsynced: Vec::new(), durable_len, poisoned: false })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the log file as of the last sync, load or replace, header
    /// included.
    pub fn bytes_durable(&self) -> u64 {
        self.durable_len
    }

    /// Bytes appended but not yet synced.
    pub fn unsynced_len(&self) -> usize {
        self.unsynced.len()
    }

    fn ensure_healthy(&self) -> Result<(), StoreError> {
        match self.poisoned {
            true => Err(StoreError::Poisoned { path: self.path.clone() }),
            false => Ok(()),
        }
    }

    fn write_unsynced(&mut self) -> Result<(), StoreError> {
        self.file.write_all(&self.unsynced).map_err(io_error("write", &self.path))?;
        self.file.sync_data().map_err(io_error("fsync", &self.path))?;
        self.durable_len += self.unsynced.len() as u64;
        self.unsynced.clear();
        Ok(())
    }

    fn reload(&mut self) -> Result<Recovered, StoreError> {
        // A fresh handle: a failed replace may have left the old one on an unlinked file.
        self.file = open_log(&self.path)?;
        let mut bytes = Vec::new();
        self.file.read_to_end(&mut bytes).map_err(io_error("read", &self.path))?;
        let recovered = decode_log(&bytes);
        if let Some(error) = refusal(&recovered, &bytes, &self.path) {
            return Err(error);
        }
        if recovered.valid_bytes < HEADER_BYTES {
            self.install(LOG_HEADER)?;
        } else if recovered.defect.is_some_and(TailDefect::is_corruption) {
            // Cut and mark in one rename (see `repaired_image`).
            self.install(&repaired_image(&bytes, &recovered))?;
        } else {
            if recovered.torn_tail_bytes > 0 {
                self.file.set_len(recovered.valid_bytes).map_err(io_error("truncate", &self.path))?;
            }
            // Always: what load returns must be durable even if an earlier
            // process wrote it without syncing before it died.
            self.file.sync_data().map_err(io_error("fsync", &self.path))?;
            self.durable_len = recovered.valid_bytes;
        }
        Ok(recovered)
    }

    fn install(&mut self, image: &[u8]) -> Result<(), StoreError> {
        write_atomically(&self.path, &self.temp_path, image)?;
        self.file = open_log(&self.path)?;
        self.durable_len = image.len() as u64;
        Ok(())
    }
}

impl Store for FileStore {
    fn append(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), StoreError> {
        self.ensure_healthy()?;
        Ok(encode_record(kind, payload, &mut self.unsynced)?)
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.ensure_healthy()?;
        if self.unsynced.is_empty() {
            return Ok(());
        }
        let result = self.write_unsynced();
        self.poisoned = result.is_err();
        result
    }

    fn load(&mut self) -> Result<Recovered, StoreError> {
        self.unsynced.clear();
        let result = self.reload();
        self.poisoned = result.is_err();
        result
    }

    fn replace(&mut self, records: &[Record]) -> Result<(), StoreError> {
        let image = encode_log(records)?;
        self.unsynced.clear();
        let result = self.install(&image);
        self.poisoned = result.is_err();
        result
    }
}

/// The compaction file beside `path`: its file name with `.compacting`.
pub(crate) fn temp_path_for(path: &Path) -> Result<PathBuf, StoreError> {
    let Some(name) = path.file_name() else {
        let source = io::Error::new(io::ErrorKind::InvalidInput, "the log path has no file name");
        return Err(StoreError::Io { op: "open", path: path.to_path_buf(), source });
    };
    let mut temp_name = name.to_os_string();
    temp_name.push(".compacting");
    Ok(path.with_file_name(temp_name))
}

/// Removes a compaction file left by a crash during [`Store::replace`]; it
/// was never renamed over the log, so it holds nothing the log needs.
fn remove_stale_temp(temp_path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(temp_path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            Err(StoreError::Io { op: "remove", path: temp_path.to_path_buf(), source: error })
        }
        _ => Ok(()),
    }
}

/// The file's first header-length bytes, or `None` if it does not exist.
fn read_header(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StoreError::Io { op: "open", path: path.to_path_buf(), source: error }),
    };
    let mut found = Vec::with_capacity(LOG_HEADER.len());
    file.take(HEADER_BYTES).read_to_end(&mut found).map_err(io_error("read", path))?;
    Ok(Some(found))
}

/// Opens an existing log for reading and appending.
fn open_log(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new().read(true).append(true).open(path).map_err(io_error("open", path))
}

/// Makes `image` the content of `path` atomically and durably: write and
/// fsync `temp_path`, rename it over `path`, fsync the directory.
fn write_atomically(path: &Path, temp_path: &Path, image: &[u8]) -> Result<(), StoreError> {
    let written = File::create(temp_path)
        .and_then(|mut file| file.write_all(image).and_then(|()| file.sync_data()))
        .map_err(io_error("write", temp_path));
    if let Err(error) = written {
        // Best effort: a leftover temp file is removed again on the next open.
        let _ = fs::remove_file(temp_path);
        return Err(error);
    }
    fs::rename(temp_path, path).map_err(io_error("rename", path))?;
    sync_directory(path)
}

/// Fsyncs the directory holding `path`, making a rename or creation in it
/// durable.
#[cfg(unix)]
fn sync_directory(path: &Path) -> Result<(), StoreError> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory).and_then(|dir| dir.sync_all()).map_err(io_error("fsync", directory))
}

/// Directories cannot be opened as files here; the rename is as durable as
/// the platform makes it.
#[cfg(not(unix))]
fn sync_directory(_path: &Path) -> Result<(), StoreError> {
    Ok(())
}
