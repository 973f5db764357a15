//! The fuzz targets' checks (`balance_split::fuzzing`, fuzzed by `scripts/fuzz`) on
//! random input inside the test command: arbitrary bytes, and valid files with a few bytes
//! changed, which reach far deeper into the readers than noise does.

use balance_split::fuzzing;
use proptest::prelude::*;

mod util;

/// `text` with up to four spans replaced by JSON/YAML punctuation or junk.
fn mutated(text: String) -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop::sample::select(vec![
        "", "{", "}", "[", "]", ",", ":", "\"", "\\", " ", "\n", "0", "-1", "1e400", "null",
        "true", "- ", "#", "'", "&a", "*a", "!!binary", "\u{0}", "\u{feff}", "1e308",
    ]);
    prop::collection::vec((any::<prop::sample::Index>(), 0usize..6, pieces), 1..5).prop_map(
        move |edits| {
            let mut b = text.clone().into_bytes();
            for (at, len, with) in edits {
                let i = at.index(b.len() + 1);
                let end = (i + len).min(b.len());
                b.splice(i..end, with.bytes());
            }
            b
        },
    )
}

fn example(rel: &str) -> String {
    std::fs::read_to_string(util::repo().join(rel)).unwrap()
}

/// A small manifest as `balance` writes it (weighted sampler, loss weights).
fn manifest_text() -> String {
    let d = util::Dir::new();
    d.split(&[5, 2]).config(
        "    weighted_sampler:\n      enabled: true\n    class_weights:\n      enabled: true\n",
    );
    d.run(&["balance", "--config", "config.yaml", "--out", "m.json"])
        .assert_ok();
    d.read("m.json")
}

/// A small real cache (the header and a few 1x1 images), the seed the mutations start from.
fn cache_bytes() -> String {
    let header = r#"{"version":1,"manifest_sha256":"ab","image_size":1,"channels":3,"classes":["a"],"paths":["x.png","y.png"]}"#;
    let mut b = b"BSCACHE1".to_vec();
    b.extend((header.len() as u32).to_le_bytes());
    b.extend(header.as_bytes());
    while b.len() % 64 != 0 {
        b.push(0);
    }
    b.extend([1u8, 2, 3, 4, 5, 6]);
    // Latin-1: every byte is one char, so the mutation strategy's text keeps them.
    b.iter().map(|&c| char::from(c)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic_a_reader(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzzing::split(&bytes);
        fuzzing::config(&bytes);
        fuzzing::prep_config(&bytes);
        fuzzing::manifest(&bytes);
        fuzzing::image(&bytes);
        fuzzing::train_config(&bytes);
        fuzzing::cache_header(&bytes);
    }

    #[test]
    fn mutated_trainer_configs(bytes in mutated(example("configs/examples/tiny.yaml"))) {
        fuzzing::train_config(&bytes);
    }

    #[test]
    fn mutated_caches(bytes in mutated(cache_bytes())) {
        fuzzing::cache_header(&bytes);
    }

    #[test]
    fn mutated_splits(bytes in mutated(util::split_json(&[3, 2]))) {
        fuzzing::split(&bytes);
    }

    #[test]
    fn mutated_configs(bytes in mutated(example("configs/diffusion.yaml"))) {
        fuzzing::config(&bytes);
    }

    #[test]
    fn mutated_data_preparation_configs(
        bytes in mutated(example("configs/examples/data_preparation_grouped.yaml")),
    ) {
        fuzzing::prep_config(&bytes);
    }

    #[test]
    fn mutated_manifests(bytes in mutated(manifest_text())) {
        fuzzing::manifest(&bytes);
    }

    #[test]
    fn mutated_images(
        name in prop::sample::select(vec![
            "pattern_48x32.jpg", "gray_16x8.jpg", "rgb_2x2.png", "gray16_4x1.png",
            "gray8_2x2.bmp", "flat_16x16.jpg",
        ]),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = std::fs::read(util::repo().join("tests/fixtures/images").join(name)).unwrap();
        for (at, v) in edits {
            let i = at.index(b.len());
            b[i] = v;
        }
        fuzzing::image(&b);
        let keep = cut.index(b.len() + 1);
        fuzzing::image(&b[..keep]);
    }
}
