//! `balance-split check-images` on real broken files.

mod util;

use pretty_assertions::assert_eq;
use util::{json, repo, run_in, Dir};

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 5) as u8, (y * 5) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A split of six images in `imgs/`: two good, and one of each failure kind.
fn broken_set() -> Dir {
    let d = Dir::new();
    std::fs::create_dir_all(d.join("imgs/dir.png")).unwrap();
    std::fs::write(d.join("imgs/good.png"), png(40, 40)).unwrap();
    std::fs::write(d.join("imgs/big.png"), png(64, 48)).unwrap();
    let full = png(40, 40);
    std::fs::write(d.join("imgs/truncated.png"), &full[..full.len() / 2]).unwrap();
    std::fs::write(d.join("imgs/text.jpg"), "this is not a JPEG\n").unwrap();
    std::fs::write(
        d.join("imgs/anim.gif"),
        b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
    )
    .unwrap();
    d.write(
        "split.json",
        r#"{"metadata": {"classes": {"a": 0, "b": 1}},
 "train": [{"path": "imgs/good.png", "label": 0}, {"path": "imgs/missing.png", "label": 1},
           {"path": "imgs/dir.png", "label": 0}, {"path": "imgs/good.png", "label": 0}],
 "val": [{"path": "imgs/truncated.png", "label": 1}, {"path": "imgs/text.jpg", "label": 0},
         {"path": "imgs/anim.gif", "label": 1}, {"path": "imgs/big.png", "label": 1}]}"#,
    );
    d
}

#[test]
fn every_failure_kind_is_reported_with_path_and_reason() {
    let d = broken_set();
    let r = d.run(&["check-images", "split.json"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "train[1] imgs/missing.png: missing (no such file)"
    );
    assert_eq!(
        lines[1],
        "train[2] imgs/dir.png: not a file (a directory or a device)"
    );
    assert!(
        lines[2].starts_with("val[0] imgs/truncated.png: truncated: "),
        "{}",
        lines[2]
    );
    assert_eq!(
        lines[3],
        "val[1] imgs/text.jpg: not an image: the content matches no known image signature"
    );
    assert_eq!(
        lines[4],
        "val[2] imgs/anim.gif: unsupported format: gif (supported: PNG, JPEG, TIFF, BMP)"
    );
    assert_eq!(
        &lines[5..],
        &[
            "split.json: 7 files checked, 5 bad",
            "  train: a 3, b 1",
            "  val: a 1, b 3",
            "  formats: png (2)",
            "  sizes: 40x40 (1), 64x48 (1)",
            "  colour types: Rgb8 (2)",
            "  1 of 2 readable files will be resized to 40x40",
        ]
    );
}

#[test]
fn json_report_and_root() {
    let d = broken_set();
    let r = run_in(
        &repo(),
        &[
            "check-images",
            d.join("split.json").to_str().unwrap(),
            "--root",
            d.path().to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(r.code, 3);
    let v = json(&r.stdout);
    assert_eq!(v["files"], 7);
    assert_eq!(
        v["bad"][0],
        serde_json::json!({"list": "train", "index": 1, "path": "imgs/missing.png", "problem": {"kind": "missing"}})
    );
    assert_eq!(
        v["bad"][4]["problem"],
        serde_json::json!({"kind": "unsupported", "detail": "gif"})
    );
    assert_eq!(v["to_resize"], 1);
}

#[test]
fn the_embedded_example_is_clean() {
    let r = run_in(
        &repo(),
        &["check-images", "splits/example/train_val_split.json"],
        &[],
    );
    r.assert_ok();
    assert!(
        r.stdout
            .starts_with("splits/example/train_val_split.json: 250 files checked, 0 bad\n"),
        "{}",
        r.stdout
    );
    // A manifest references the same files (duplicates decoded once).
    let r = run_in(
        &repo(),
        &["check-images", "tests/golden/upsampling.balanced.json"],
        &[],
    );
    r.assert_ok();
    assert!(
        r.stdout
            .contains(": 250 files checked, 0 bad\n  train: abnormal 180, normal 180\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_input_exits_2() {
    let d = Dir::new();
    let r = d.run(&["check-images", "nope.json"]);
    assert_eq!(
        r.assert_bad_input(),
        "error: nope.json: cannot read split file: No such file or directory (os error 2)"
    );
}
