//! The metrics CSV: one row per epoch. A resumed run appends to the file its first run
//! wrote, so the whole history stays in one table.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::error::TrainError;

/// One epoch's numbers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// 1-based: the number of epochs completed.
    pub epoch: usize,
    /// Optimizer steps completed.
    pub step: u64,
    /// Mean unweighted MSE over the epoch's steps.
    pub loss: f64,
    /// Mean of the objective actually minimised (equal to `loss` without class weights).
    pub weighted_loss: f64,
    pub lr: f64,
    pub images_per_s: f64,
    /// Validation MSE (unweighted), overall and per class, when validation ran.
    pub val_loss: Option<f64>,
    pub val_loss_per_class: Vec<Option<f64>>,
}

/// Appends rows to `metrics.csv`.
pub struct Metrics {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Metrics {
    /// Opens (or creates) the file, writing the header when it is new or empty.
    pub fn open(path: &Path, classes: &[String]) -> Result<Metrics, TrainError> {
        let err = |source| TrainError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = crate::output::open_append(path).map_err(err)?;
        let empty = file.metadata().map_err(err)?.len() == 0;
        let mut m = Metrics {
            path: path.to_owned(),
            out: BufWriter::new(file),
        };
        if empty {
            let mut header = String::from("epoch,step,loss,weighted_loss,lr,images_per_s,val_loss");
            for c in classes {
                header.push(',');
                header.push_str(&csv_field(&format!("val_loss_{c}")));
            }
            m.line(&header)?;
        }
        Ok(m)
    }

    fn line(&mut self, s: &str) -> Result<(), TrainError> {
        writeln!(self.out, "{s}")
            .and_then(|()| self.out.flush())
            .map_err(|source| TrainError::Write {
                path: self.path.clone(),
                source,
            })
    }

    /// Writes one row and flushes it, so a crash loses at most the epoch in progress.
    pub fn write(&mut self, r: &Row) -> Result<(), TrainError> {
        let opt = |x: Option<f64>| x.map(|v| format!("{v:.6}")).unwrap_or_default();
        let mut s = format!(
            "{},{},{:.6},{:.6},{:.6e},{:.1},{}",
            r.epoch,
            r.step,
            r.loss,
            r.weighted_loss,
            r.lr,
            r.images_per_s,
            opt(r.val_loss)
        );
        for v in &r.val_loss_per_class {
            s.push(',');
            s.push_str(&opt(*v));
        }
        self.line(&s)
    }
}

/// Class names may hold commas or quotes; quote them as RFC 4180 says.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_once_then_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m/metrics.csv");
        let classes = ["normal".to_string(), "ab,normal".to_string()];
        let mut m = Metrics::open(&path, &classes).unwrap();
        m.write(&Row {
            epoch: 1,
            step: 23,
            loss: 0.5,
            weighted_loss: 0.75,
            lr: 1e-4,
            images_per_s: 123.45,
            val_loss: None,
            val_loss_per_class: vec![None, None],
        })
        .unwrap();
        drop(m);
        let mut m = Metrics::open(&path, &classes).unwrap();
        m.write(&Row {
            epoch: 2,
            step: 46,
            loss: 0.25,
            weighted_loss: 0.25,
            lr: 5e-5,
            images_per_s: 100.0,
            val_loss: Some(0.3),
            val_loss_per_class: vec![Some(0.2), Some(0.4)],
        })
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "epoch,step,loss,weighted_loss,lr,images_per_s,val_loss,val_loss_normal,\"val_loss_ab,normal\"\n\
             1,23,0.500000,0.750000,1.000000e-4,123.5,,,\n\
             2,46,0.250000,0.250000,5.000000e-5,100.0,0.300000,0.200000,0.400000\n"
        );
    }
}
