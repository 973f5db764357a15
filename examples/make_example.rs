//! Generates the embedded example under `splits/example/`: a small imbalanced image set in
//! the user's layout (180 `normal` / 20 `abnormal` training images, 45 / 5 validation, 40x40
//! RGB PNG) and its split JSON in the user's format.
//!
//! Deterministic: the same program writes the same bytes (ChaCha20 with a fixed key, the
//! PNG encoder pinned by Cargo.lock). Run from the repository root:
//!
//! ```text
//! cargo run --example make_example -- splits/example
//! ```
//!
//! It also writes what a generator and the user's sample-selection step would have made for
//! the classifier's synthetic-augmentation examples: 40 "generated" `abnormal` images
//! (`generated/abnormal/`, drawn from a stream of their own, so they are not copies of
//! real ones) and `accepted_samples.json` in the user's sample-selection format (their
//! `write_accepted_samples_json`: one class, entries ranked best first with a `score`).
//!
//! The classes differ in a way a small diffusion model can learn and a person can see:
//! `normal` is a smooth pale tissue-like disc; `abnormal` is the same with a dark red
//! lesion and a bright rim. Images are smooth (no pixel noise) so the set stays small.

use std::fs;
use std::path::{Path, PathBuf};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::json;

const SIZE: u32 = 40;

/// Uniform in [lo, hi) from the top 53 bits.
fn uniform(rng: &mut ChaCha20Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
}

fn smoothstep(edge0: f64, edge1: f64, x: f64) -> f64 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

fn render(rng: &mut ChaCha20Rng, abnormal: bool) -> image::RgbImage {
    let cx = uniform(rng, 16.0, 24.0);
    let cy = uniform(rng, 16.0, 24.0);
    let r = uniform(rng, 12.0, 16.0);
    let tint = uniform(rng, -0.08, 0.08);
    let phase = uniform(rng, 0.0, std::f64::consts::TAU);
    let (lx, ly, lr) = (
        cx + uniform(rng, -5.0, 5.0),
        cy + uniform(rng, -5.0, 5.0),
        uniform(rng, 3.5, 6.0),
    );
    image::RgbImage::from_fn(SIZE, SIZE, |x, y| {
        let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
        let d = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt();
        let inside = 1.0 - smoothstep(r - 2.0, r + 1.0, d);
        let texture = 0.04 * ((fx * 0.35 + phase).sin() * (fy * 0.3 - phase).cos());
        // background: dark bluish gray; tissue: pale pink.
        let bg = [0.16, 0.18, 0.24];
        let tissue = [0.86 + tint, 0.70 + texture, 0.72 - tint];
        let mut c = [0.0; 3];
        for k in 0..3 {
            c[k] = bg[k] * (1.0 - inside) + tissue[k] * inside;
        }
        if abnormal {
            let dl = ((fx - lx).powi(2) + (fy - ly).powi(2)).sqrt();
            let core = 1.0 - smoothstep(lr - 1.5, lr, dl);
            let rim = (1.0 - smoothstep(0.0, 1.2, (dl - lr - 0.5).abs())) * 0.8;
            let lesion = [0.45, 0.05, 0.08];
            for k in 0..3 {
                c[k] = c[k] * (1.0 - core) + lesion[k] * core;
                c[k] += rim * [0.15, 0.12, 0.02][k];
            }
        }
        // Quantised to multiples of 4: invisible, and PNG compresses it far better.
        image::Rgb(c.map(|v| (((v.clamp(0.0, 1.0) * 255.0).round() as u32 / 4) * 4) as u8))
    })
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "splits/example".into()),
    );
    let mut rng = ChaCha20Rng::from_seed(*b"balance-split example images v1!");
    let classes = [
        ("normal", "0.Normal", 180usize, 45usize),
        ("abnormal", "1.Abnormal", 20, 5),
    ];
    let mut lists = vec![Vec::new(), Vec::new()];
    for (label, (_, dir, n_train, n_val)) in classes.iter().enumerate() {
        for (li, (split, n)) in [("train", *n_train), ("val", *n_val)]
            .into_iter()
            .enumerate()
        {
            let folder = out.join("images").join(split).join(dir);
            fs::create_dir_all(&folder).expect("create image folder");
            for i in 0..n {
                let file = folder.join(format!("image_{i:03}.png"));
                render(&mut rng, label == 1).save(&file).expect("write PNG");
                lists[li].push(json!({"path": rel(&file), "label": label}));
            }
        }
    }
    // The user's data-preparation step shuffles before splitting; so do we (Fisher-Yates).
    for list in &mut lists {
        for i in (1..list.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            list.swap(i, j);
        }
    }
    let split = json!({
        "metadata": {
            "created_at": "2026-01-01T00:00:00",
            "seed": 0,
            "train_ratio": 0.8,
            "total_samples": 250,
            "train_samples": 200,
            "val_samples": 50,
            "classes": {"abnormal": 1, "normal": 0},
            "class_samples": {
                "normal": {"total": 225, "train": 180, "val": 45},
                "abnormal": {"total": 25, "train": 20, "val": 5}
            },
            "source_paths": {
                "normal": rel(&out.join("images/train/0.Normal")),
                "abnormal": rel(&out.join("images/train/1.Abnormal"))
            }
        },
        "train": lists[0],
        "val": lists[1],
    });
    let text = serde_json::to_string_pretty(&split).expect("serialise split") + "\n";
    fs::write(out.join("train_val_split.json"), text).expect("write split");
    eprintln!("wrote {}", out.join("train_val_split.json").display());
    write_selection(&out);
}

/// The "generated" images and their sample-selection file, ranked by a made-up k-NN score
/// (ascending: most realistic first), as the user's selection step writes it.
fn write_selection(out: &Path) {
    let mut rng = ChaCha20Rng::from_seed(*b"balance-split generated images!!");
    let folder = out.join("generated").join("abnormal");
    fs::create_dir_all(&folder).expect("create generated folder");
    let mut entries: Vec<(f64, String)> = (0..40)
        .map(|i| {
            let file = folder.join(format!("sample_{i:04}.png"));
            render(&mut rng, true).save(&file).expect("write PNG");
            // Two decimals, as a score printed by a person would be.
            let score = (uniform(&mut rng, 1.0, 9.0) * 100.0).round() / 100.0;
            (score, rel(&file))
        })
        .collect();
    entries.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let selection = json!({
        "metadata": {
            "created_at": "2026-01-01T00:00:00",
            "source_experiment": "sample_selection",
            "classes": {"abnormal": 1},
            "selection_mode": "percentile",
            "total_candidates": 50,
            "total_selected": 40
        },
        "train": entries
            .iter()
            .map(|(score, path)| json!({"path": path, "label": 1, "score": score}))
            .collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&selection).expect("serialise selection") + "\n";
    let file = out.join("accepted_samples.json");
    fs::write(&file, text).expect("write selection");
    eprintln!("wrote {}", file.display());
}

/// Forward-slash relative paths, as the user's split files have them.
fn rel(p: &Path) -> String {
    p.to_string_lossy().replace('\\', "/")
}
