//! `$LOG_DIR/<service>.log`, rotated daily.
//!
//! Log shippers (Filebeat, Promtail) and users tail one stable name, so the live file is always
//! `<service>.log`; at the first write of a new UTC day it is renamed to `<service>.log.<YYYY-MM-DD>`
//! (the day it holds) and a fresh file is opened. tracing-appender's rolling appender puts the date
//! in the live file's name, which breaks that stable name.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A file writer that starts a new file when the UTC day changes.
pub(crate) struct DailyFile {
    path: PathBuf,
    file: File,
    day: chrono::NaiveDate,
}

impl DailyFile {
    /// Opens (appending) `dir/<name>.log`, creating the directory.
    pub(crate) fn open(dir: &Path, name: &str) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.log"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let day = file
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| chrono::DateTime::<chrono::Utc>::from(t).date_naive())
            .unwrap_or_else(|_| chrono::Utc::now().date_naive());
        Ok(Self { path, file, day })
    }

    fn rotate_if_needed(&mut self) -> io::Result<()> {
        let today = chrono::Utc::now().date_naive();
        if today == self.day {
            return Ok(());
        }
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(format!(".{}", self.day.format("%Y-%m-%d")));
        self.file.flush()?;
        // Another process may already have rotated it: then just reopen.
        let _ = std::fs::rename(&self.path, &rotated);
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.day = today;
        Ok(())
    }
}

impl Write for DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.rotate_if_needed()?;
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_to_the_stable_name_and_rotates_on_a_new_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = DailyFile::open(dir.path(), "svc").unwrap();
        f.write_all(b"one\n").unwrap();
        f.day = f.day.pred_opt().unwrap();
        let old_day = f.day;
        f.write_all(b"two\n").unwrap();
        let live = std::fs::read_to_string(dir.path().join("svc.log")).unwrap();
        assert_eq!(live, "two\n");
        let rotated = dir
            .path()
            .join(format!("svc.log.{}", old_day.format("%Y-%m-%d")));
        assert_eq!(std::fs::read_to_string(rotated).unwrap(), "one\n");
    }
}
