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
split.json: 8 images, 0 unreadable; 2 leak(s) across lists (train-test 1, train-val 1; by class: normal 2); pHash threshold 10 bits, pixel residual at most 3
"
    );
    let v = json(&d.run(&["check-leaks", "split.json", "--json"]).stdout);
    assert_eq!(v["clusters"][0]["kind"], "identical_bytes");
    assert_eq!(v["clusters"][0]["label_conflict"], true);
    assert_eq!(
        v["clusters"][0]["lists"],
        serde_json::json!({"train": 1, "val": 1})
    );
    assert_eq!(v["clusters"][1]["kind"], "identical_pixels");
    assert_eq!(v["clusters"][1]["members"][1]["path"], "img/0-again.bmp");
    assert_eq!(v["pairs"], serde_json::json!([]));
}

/// 60 copies of one frame over train, val and test (scan data has many blank frames): one
/// cluster with its members per list, not 1,770 pairs; and a file listed twice is the same
/// bytes, not a near copy at distance 0.
#[test]
fn copies_of_one_image_are_one_cluster_and_a_file_listed_twice_is_identical_bytes() {
    let d = Dir::new();
    save(
        &d,
        "img/blank.png",
        &RgbImage::from_pixel(32, 32, Rgb([7, 7, 7])),
    );
    for i in 0..60 {
        std::fs::copy(d.join("img/blank.png"), d.join(&format!("img/b{i}.png"))).unwrap();
    }
    let names: Vec<String> = (0..60).map(|i| format!("img/b{i}.png")).collect();
    let entries = |r: std::ops::Range<usize>| -> Vec<(&str, u32)> {
        names[r].iter().map(|n| (n.as_str(), 0)).collect()
    };
    split(
        &d,
        &[
            ("train", &entries(0..40)),
            ("val", &entries(40..50)),
            ("test", &entries(50..60)),
        ],
    );
    let r = d.run(&["check-leaks", "split.json"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "across lists: 1
  identical bytes, 60 images (train 40, val 10, test 10): train[0] img/b0.png (normal)  =  train[1] img/b1.png (normal)  =  train[2] img/b2.png (normal)  =  train[3] img/b3.png (normal)  =  train[4] img/b4.png (normal)  =  train[5] img/b5.png (normal)  =  train[6] img/b6.png (normal)  =  train[7] img/b7.png (normal)  =  train[8] img/b8.png (normal)  =  train[9] img/b9.png (normal)  and 50 more
split.json: 60 images, 0 unreadable; 1 leak(s) across lists (train-test 1, train-val 1, val-test 1; by class: normal 1); pHash threshold 10 bits, pixel residual at most 3
"
    );
    let v = json(&d.run(&["check-leaks", "split.json", "--json"]).stdout);
    assert_eq!(v["clusters"].as_array().unwrap().len(), 1);
    assert_eq!(v["clusters"][0]["members"].as_array().unwrap().len(), 60);
    assert_eq!(v["pairs_found"], 0);
    split(
        &d,
        &[
            ("train", &[("img/blank.png", 0)]),
            ("test", &[("img/blank.png", 0)]),
        ],
    );
    let r = d.run(&["check-leaks", "split.json"]);
    assert_eq!(r.code, 4);
    assert!(
        r.stdout.starts_with("across lists: 1\n  identical bytes: train[0] img/blank.png (normal)  =  test[0] img/blank.png (normal)\n"),
        "{}",
        r.stdout
    );
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
    assert_eq!(v["pairs"][0]["featureless"], false);
    assert!(v["pairs"][0]["distance"].as_u64().unwrap() <= 10);
    assert!(v["pairs"][0]["residual"].as_f64().unwrap() <= 3.0);
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
        "across lists: 1
  identical pixels, 3 images (train 1, val 1, test 1): train[0] img/a.jpg (normal)  =  val[0] img/a.png (normal)  =  test[0] img/a-commented.jpg (normal)
split.json: 4 images, 0 unreadable; 1 leak(s) across lists (train-test 1, train-val 1, val-test 1; by class: normal 1); pHash threshold 10 bits, pixel residual at most 3
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
    // train repeats each abnormal entry 9 times; none of the repeats is a pair or a
    // cluster, and the example's look-alike discs are no copies of each other.
    assert_eq!(v["pairs"], serde_json::json!([]), "{}", r.stdout);
    assert_eq!(v["clusters"], serde_json::json!([]), "{}", r.stdout);
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
        "kind,cluster,distance,residual,label_conflict,a_list,a_index,a_path,a_class,b_list,b_index,b_path,b_class
identical_bytes,0,0,0,false,train,0,img/a.png,normal,test,0,img/b&c.png,normal
"
    );
}

/// The embedded example holds no copies: its 250 look-alike discs (which the pHash alone
/// called near copies 317 times) are told apart by their pixels, exit 0; a JPEG 90 copy
/// and a copy resized down and back, planted across the lists, are found.
#[test]
fn the_embedded_example_is_clean_and_planted_copies_in_it_are_found() {
    let r = run_in(
        &repo(),
        &["check-leaks", "splits/example/train_val_split.json"],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(
        r.stdout,
        "splits/example/train_val_split.json: 250 images, 0 unreadable; 0 leak(s) across lists; pHash threshold 10 bits, pixel residual at most 3\n"
    );
    let d = Dir::new();
    util::copy_dir(&repo().join("splits/example"), &d.join("splits/example"));
    let mut split = json(&d.read("splits/example/train_val_split.json"));
    let val = split["val"].as_array().unwrap().clone();
    let original = |k: usize| {
        image::open(d.join(val[k]["path"].as_str().unwrap()))
            .unwrap()
            .into_rgb8()
    };
    let mut jpg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpg, 90)
        .encode_image(&original(3))
        .unwrap();
    std::fs::write(d.join("copy.jpg"), jpg).unwrap();
    let tri = image::imageops::FilterType::Triangle;
    let small = image::imageops::resize(&original(9), 30, 30, tri);
    image::imageops::resize(&small, 40, 40, tri)
        .save(d.join("copy.png"))
        .unwrap();
    let train = split["train"].as_array_mut().unwrap();
    train.push(serde_json::json!({"path": "copy.jpg", "label": val[3]["label"]}));
    train.push(serde_json::json!({"path": "copy.png", "label": val[9]["label"]}));
    d.write("planted.json", &split.to_string());
    let r = d.run(&["check-leaks", "planted.json", "--json"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let v = json(&r.stdout);
    let found: Vec<(String, String)> = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["a"]["path"].as_str().unwrap().to_owned(),
                p["b"]["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "copy.jpg".to_string(),
                val[3]["path"].as_str().unwrap().to_string()
            ),
            (
                "copy.png".to_string(),
                val[9]["path"].as_str().unwrap().to_string()
            ),
        ]
    );
}
