//! `balance-split check-leaks` seen from outside.

mod util;

use image::{Rgb, RgbImage};
use pretty_assertions::assert_eq;
use util::{json, repo, run_in, Dir};

/// A distinct 32x32 image per `seed`.
fn picture(seed: u32) -> RgbImage {
    RgbImage::from_fn(32, 32, |x, y| {
        let v = |k: u32| {
            ((x * (seed % 7 + 1) + y * (k + seed % 5) * 3 + seed * 37 + k * 50) % 256) as u8
        };
        Rgb([v(0), v(1), v(2)])
    })
}

fn save(d: &Dir, rel: &str, img: &RgbImage) {
    let p = d.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    img.save(&p).unwrap();
}

/// A split of `lists` = (list, [(path, label)]).
fn split(d: &Dir, lists: &[(&str, &[(&str, u32)])]) {
    let mut body = String::from("{\"metadata\": {\"classes\": {\"normal\": 0, \"abnormal\": 1}}");
    for (name, entries) in lists {
        let e: Vec<String> = entries
            .iter()
            .map(|(p, l)| format!("{{\"path\": \"{p}\", \"label\": {l}}}"))
            .collect();
        body += &format!(", \"{name}\": [{}]", e.join(", "));
    }
    body += "}";
    d.write("split.json", &body);
}

#[test]
fn identical_pixels_bytes_and_a_label_conflict_are_found_and_ordered() {
    let d = Dir::new();
    for i in 0..6 {
        save(&d, &format!("img/{i}.png"), &picture(i));
    }
    // 0.png again as BMP (same pixels, other bytes), and a byte copy of 1.png.
    save(&d, "img/0-again.bmp", &picture(0));
    std::fs::copy(d.join("img/1.png"), d.join("img/1-copy.png")).unwrap();
    split(
        &d,
        &[
            (
                "train",
                &[("img/0.png", 0), ("img/1.png", 0), ("img/2.png", 1)],
            ),
            ("val", &[("img/3.png", 0), ("img/1-copy.png", 1)]),
            (
                "test",
                &[("img/4.png", 0), ("img/0-again.bmp", 0), ("img/5.png", 1)],
            ),
        ],
    );
    let r = d.run(&["check-leaks", "split.json"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "label conflicts (the same image under two labels): 1
  identical bytes: train[1] img/1.png (normal)  =  val[1] img/1-copy.png (abnormal)
across lists: 1
  identical pixels: train[0] img/0.png (normal)  =  test[1] img/0-again.bmp (normal)
split.json: 8 images, 0 unreadable; 2 leak(s) across lists (train-test 1, train-val 1; by class: normal 2); pHash threshold 6 bits
"
    );
    let v = json(&d.run(&["check-leaks", "split.json", "--json"]).stdout);
    assert_eq!(v["pairs"][0]["kind"], "identical_bytes");
    assert_eq!(v["pairs"][0]["label_conflict"], true);
    assert_eq!(v["pairs"][1]["kind"], "identical_pixels");
    assert_eq!(v["pairs"][1]["b"]["path"], "img/0-again.bmp");
}

#[test]
fn a_reencoded_jpeg_is_a_near_duplicate_and_within_finds_repeats() {
    let d = Dir::new();
    for i in 0..4 {
        save(&d, &format!("img/{i}.png"), &picture(i + 10));
    }
    let mut jpg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 90)
        .encode_image(&picture(12))
        .unwrap();
    d.write("img/2.jpg", "");
    std::fs::write(d.join("img/2.jpg"), jpg).unwrap();
    std::fs::copy(d.join("img/3.png"), d.join("img/3b.png")).unwrap();
    split(
        &d,
        &[
            (
                "train",
                &[
                    ("img/0.png", 0),
                    ("img/2.png", 0),
                    ("img/3.png", 1),
                    ("img/3b.png", 1),
                ],
            ),
            ("val", &[("img/1.png", 0), ("img/2.jpg", 0)]),
        ],
    );
    let r = d.run(&["check-leaks", "split.json", "--json"]);
    assert_eq!(r.code, 4);
    let v = json(&r.stdout);
    assert_eq!(v["pairs"].as_array().unwrap().len(), 1, "{}", r.stdout);
    assert_eq!(v["pairs"][0]["kind"], "near");
    assert!(v["pairs"][0]["distance"].as_u64().unwrap() <= 6);
    let r = d.run(&["check-leaks", "split.json", "--within"]);
    assert_eq!(r.code, 4);
    assert!(r.stdout.contains("within a list: 1\n  identical bytes: train[2] img/3.png (abnormal)  =  train[3] img/3b.png (abnormal)\n"), "{}", r.stdout);
}

#[test]
fn a_large_jpeg_hashed_at_a_reduced_scale_still_matches_its_pixels_saved_as_png() {
    // 256x256: check-leaks hashes the JPEG from libjpeg's 1/4-scale decode and the PNG
    // from its full pixels; the two are still found to hold identical pixels. A second
    // JPEG with the same image data and a comment segment has other bytes, the same pixels.
    let d = Dir::new();
    let big = image::imageops::resize(&picture(3), 256, 256, image::imageops::FilterType::Triangle);
    let mut jpg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 90)
        .encode_image(&big)
        .unwrap();
    std::fs::create_dir_all(d.join("img")).unwrap();
    std::fs::write(d.join("img/a.jpg"), &jpg).unwrap();
    // The same stream with a COM segment after SOI.
    let mut commented = jpg[..2].to_vec();
    commented.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x07, b'c', b'o', b'p', b'y', b'!']);
    commented.extend_from_slice(&jpg[2..]);
    std::fs::write(d.join("img/a-commented.jpg"), &commented).unwrap();
    let pixels = image::load_from_memory(&jpg).unwrap().into_rgb8();
    save(&d, "img/a.png", &pixels);
    save(&d, "img/other.png", &picture(4));
    split(
        &d,
        &[
            ("train", &[("img/a.jpg", 0), ("img/other.png", 0)]),
            ("val", &[("img/a.png", 0)]),
            ("test", &[("img/a-commented.jpg", 0)]),
        ],
    );
    let r = d.run(&["check-leaks", "split.json"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "across lists: 3
  identical pixels: train[0] img/a.jpg (normal)  =  val[0] img/a.png (normal)
  identical pixels: train[0] img/a.jpg (normal)  =  test[0] img/a-commented.jpg (normal)
  identical pixels: val[0] img/a.png (normal)  =  test[0] img/a-commented.jpg (normal)
split.json: 4 images, 0 unreadable; 3 leak(s) across lists (train-test 1, train-val 1, val-test 1; by class: normal 3); pHash threshold 6 bits
"
    );
}

#[test]
fn upsampled_duplicates_in_a_manifest_are_not_leaks() {
    let d = Dir::tiny_project();
    std::fs::copy(
        repo().join("configs/examples/upsampling.yaml"),
        d.join("up.yaml"),
    )
    .unwrap();
    d.run(&["balance", "--config", "up.yaml", "--out", "m.json"])
        .assert_ok();
    let r = d.run(&["check-leaks", "m.json", "--within", "--json"]);
    let v = json(&r.stdout);
    assert_eq!(v["images"], 250);
    // train repeats each abnormal entry 9 times; none of the repeats is a pair. (The
    // example's images are variations of one synthetic disc, so near pairs there are.)
    for p in v["pairs"].as_array().unwrap() {
        assert_ne!(p["a"]["path"], p["b"]["path"], "{p}");
        assert_eq!(p["kind"], "near", "{p}");
    }
}

#[test]
fn reports_unreadable_images_and_bad_input() {
    let d = Dir::new();
    save(&d, "img/0.png", &picture(1));
    d.write("img/bad.png", "not a png");
    split(
        &d,
        &[
            ("train", &[("img/0.png", 0)]),
            ("val", &[("img/bad.png", 1), ("img/gone.png", 0)]),
        ],
    );
    std::os::unix::fs::symlink("split.json", d.join("link.csv")).unwrap();
    let r = d.run(&["check-leaks", "split.json"]);
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(r.stdout.starts_with("val[0] img/bad.png: not an image: the content matches no known image signature (skipped)\nval[1] img/gone.png: missing (no such file) (skipped)\n"), "{}", r.stdout);
    for (args, want) in [
        (vec!["check-leaks", "nothing.json"], "error: nothing.json: cannot read split file: No such file or directory (os error 2)"),
        (vec!["check-leaks", "split.json", "--threshold", "17"], "error: --threshold: expected 0 to 16 bits, found 17"),
        (vec!["check-leaks", "split.json", "--report", "r.txt"], "error: --report r.txt: expected a file name ending in .html or .csv"),
        (vec!["check-leaks", "split.json", "--report", "link.csv"], "error: link.csv: refusing to overwrite an input file (split.json); choose another output"),
    ] {
        let r = d.run(&args);
        let line = r.assert_bad_input();
        assert!(line.starts_with(want.split(':').next().unwrap()), "{line}");
        assert_eq!(line, want, "{args:?}");
    }
}

#[test]
fn the_html_and_csv_reports_name_both_files() {
    let d = Dir::new();
    save(&d, "img/a.png", &picture(3));
    std::fs::copy(d.join("img/a.png"), d.join("img/b&c.png")).unwrap();
    split(
        &d,
        &[
            ("train", &[("img/a.png", 0)]),
            ("test", &[("img/b&c.png", 0)]),
        ],
    );
    assert_eq!(
        d.run(&["check-leaks", "split.json", "--report", "leaks.html"])
            .code,
        4
    );
    let page = d.read("leaks.html");
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(page.ends_with("</body></html>\n"));
    assert!(page.contains("train[0] img/a.png<br>normal"), "{page}");
    assert!(page.contains("test[0] img/b&amp;c.png<br>normal"), "{page}");
    assert_eq!(page.matches("<img alt=").count(), 2);
    assert_eq!(page.matches("<tr").count(), page.matches("</tr>").count());
    assert_eq!(
        d.run(&["check-leaks", "split.json", "--report", "leaks.csv"])
            .code,
        4
    );
    assert_eq!(
        d.read("leaks.csv"),
        "kind,distance,label_conflict,a_list,a_index,a_path,a_class,b_list,b_index,b_path,b_class
identical_bytes,0,false,train,0,img/a.png,normal,test,0,img/b&c.png,normal
"
    );
}

/// The embedded example holds no copies (no identical bytes or pixels across lists); its
/// images are variations of one synthetic disc, which the pHash calls near duplicates.
#[test]
fn the_embedded_example_has_no_copies() {
    let r = run_in(
        &repo(),
        &[
            "check-leaks",
            "splits/example/train_val_split.json",
            "--json",
        ],
        &[],
    );
    let v = json(&r.stdout);
    assert_eq!(v["images"], 250);
    let pairs = v["pairs"].as_array().unwrap();
    assert!(!pairs.is_empty());
    assert!(pairs.iter().all(|p| p["kind"] == "near"));
    assert_eq!(r.code, 4);
}
