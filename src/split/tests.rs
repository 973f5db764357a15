use super::*;
use pretty_assertions::assert_eq;

fn parse(text: &str) -> Result<Split<'_>, String> {
    Split::parse(text, Path::new("s.json")).map_err(|e| e.to_string())
}

const CLASSES: &str = r#""metadata": {"classes": {"abnormal": 1, "normal": 0}}"#;

fn with_train(train: &str) -> String {
    format!(r#"{{{CLASSES}, "train": {train}, "val": []}}"#)
}

#[test]
fn users_example_split_parses() {
    let text = include_str!("../../splits/example/train_val_split.json");
    let s = parse(text).unwrap();
    assert_eq!(
        s.classes,
        vec!["normal".to_string(), "abnormal".to_string()]
    );
    assert_eq!(s.train.len(), 200);
    assert_eq!(s.val.as_ref().map(Vec::len), Some(50));
    assert_eq!(s.test, None);
    assert_eq!(s.train_labels().iter().filter(|&&l| l == 1).count(), 20);
}

#[test]
fn paths_are_borrowed_unless_escaped() {
    let text = with_train(r#"[{"path": "a/b.png", "label": 0}, {"path": "a\"q.png", "label": 1}]"#);
    let s = parse(&text).unwrap();
    assert!(matches!(s.train[0].path, Cow::Borrowed("a/b.png")));
    assert_eq!(s.train[1].path, "a\"q.png");
}

#[test]
fn extra_fields_are_kept_in_order() {
    let text = format!(
        r#"{{{CLASSES}, "train": [{{"path": "a", "label": 0, "z": 1, "a": [1, 2]}}], "note": "x", "val": []}}"#
    );
    let s = parse(&text).unwrap();
    let extra = s.train[0].extra.as_ref().unwrap();
    assert_eq!(extra.keys().collect::<Vec<_>>(), vec!["z", "a"]);
    assert_eq!(s.extra, vec![("note".to_string(), Value::from("x"))]);
}

#[test]
fn invalid_json_reports_line_and_column() {
    let err = parse("{\n  \"train\": [\n    {\"path\": \"a\" \"label\": 0}\n").unwrap_err();
    assert_eq!(err, "s.json: expected `,` or `}` at line 3 column 18");
    let err = parse("{} trailing").unwrap_err();
    assert_eq!(err, "s.json: trailing characters at line 1 column 4");
}

#[test]
fn train_must_exist_and_not_be_empty() {
    let err = parse(&format!("{{{CLASSES}, \"val\": []}}")).unwrap_err();
    assert_eq!(
        err,
        "s.json: train: missing (expected a list of {\"path\", \"label\"} entries)"
    );
    let err = parse(&with_train("[]")).unwrap_err();
    assert_eq!(err, "s.json: train: is empty; there is nothing to balance");
}

#[test]
fn entries_need_a_string_path_and_an_integer_label() {
    let cases = [
        (r#"[{"label": 0}]"#, "train[0]: missing \"path\""),
        (
            r#"[{"path": "a", "label": 0}, {"path": 3, "label": 0}]"#,
            "train[1]: \"path\" must be a string, found integer 3",
        ),
        (r#"[{"path": "a"}]"#, "train[0]: missing \"label\""),
        (
            r#"[{"path": "a", "label": "1"}]"#,
            "train[0]: \"label\" must be an integer, found string \"1\"",
        ),
        (
            r#"[{"path": "a", "label": 1.0}]"#,
            "train[0]: \"label\" must be an integer, found number 1.0",
        ),
        (
            r#"[{"path": "a", "label": null}]"#,
            "train[0]: \"label\" must be an integer, found null",
        ),
    ];
    for (train, want) in cases {
        let err = parse(&with_train(train)).unwrap_err();
        assert!(
            err.starts_with(&format!("s.json: {want} at line 1 column")),
            "{err}\nwant: {want}"
        );
    }
    let err = parse(&with_train(r#"["a.png"]"#)).unwrap_err();
    assert!(
        err.starts_with(
            "s.json: invalid type: string \"a.png\", expected train[0] to be an object"
        ),
        "{err}"
    );
    let err = parse(&with_train(r#"{"a": 1}"#)).unwrap_err();
    assert!(
        err.starts_with("s.json: invalid type: map, expected \"train\" to be a list"),
        "{err}"
    );
}

#[test]
fn labels_must_be_declared_classes() {
    let err = parse(&with_train(r#"[{"path": "a", "label": 2}]"#)).unwrap_err();
    assert_eq!(
        err,
        "s.json: train[0]: label 2 is not a class in metadata.classes (expected an integer from 0 to 1)"
    );
    let text = format!(
        r#"{{{CLASSES}, "train": [{{"path": "a", "label": 0}}], "val": [{{"path": "b", "label": -1}}]}}"#
    );
    let err = parse(&text).unwrap_err();
    assert_eq!(
        err,
        "s.json: val[0]: label -1 is not a class in metadata.classes (expected an integer from 0 to 1)"
    );
}

#[test]
fn class_labels_must_be_zero_to_k_minus_one() {
    let cases = [
        (
            r#"{"a": 0, "b": 2}"#,
            "class \"b\" has label 2; expected labels 0 to 1, one per class",
        ),
        (
            r#"{"a": 1, "b": 1}"#,
            "classes \"a\" and \"b\" share label 1; expected labels 0 to 1, one per class",
        ),
        (
            r#"{"a": "0"}"#,
            "class \"a\" has label \"0\"; expected labels 0 to 0, one per class",
        ),
        (r#"{}"#, "is empty; expected at least one class"),
        (
            r#"[]"#,
            "expected an object mapping class name to label, found a list",
        ),
    ];
    for (classes, want) in cases {
        let text = format!(
            r#"{{"metadata": {{"classes": {classes}}}, "train": [{{"path": "a", "label": 0}}]}}"#
        );
        assert_eq!(
            parse(&text).unwrap_err(),
            format!("s.json: metadata.classes: {want}")
        );
    }
    let err = parse(r#"{"train": [{"path": "a", "label": 0}]}"#).unwrap_err();
    assert_eq!(
        err,
        "s.json: metadata: missing (expected an object with \"classes\")"
    );
}

#[test]
fn a_manifest_is_not_a_split_to_balance() {
    let text =
        format!(r#"{{{CLASSES}, "train": [{{"path": "a", "label": 0}}], "balancing": {{}}}}"#);
    assert_eq!(
        parse(&text).unwrap_err(),
        "s.json: balancing: this is already a balanced manifest; balance its source split instead"
    );
}

#[test]
fn test_split_is_optional_and_kept() {
    let text = format!(
        r#"{{{CLASSES}, "train": [{{"path": "a", "label": 0}}], "val": [], "test": [{{"path": "t", "label": 1}}]}}"#
    );
    let s = parse(&text).unwrap();
    assert_eq!(s.test.unwrap()[0].path, "t");
}

mod readers_agree {
    use super::super::{fast, serde_path, RawSplit};
    use proptest::prelude::*;

    fn serde_read(text: &str) -> Result<RawSplit<'_>, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        let raw = serde::Deserializer::deserialize_map(&mut de, serde_path::TopVisitor { text })
            .map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok(raw)
    }

    /// One entry in one of several spellings; `plain` says whether it is the exact shape
    /// the fast reader takes itself.
    fn entry() -> impl Strategy<Value = (String, bool)> {
        let path = prop_oneof![
            "[a-z/._]{0,12}".prop_map(|s| (s, true)),
            Just(("caf\u{e9}/\u{1F600}.png".to_string(), true)),
            Just(("a\\\"b".to_string(), false)),
            Just(("tab\\tx".to_string(), false)),
            Just(("u\\u00e9".to_string(), false)),
        ];
        let label = prop_oneof![
            (0u32..5).prop_map(|l| (l.to_string(), true)),
            Just(("-1".to_string(), false)),
            Just(("1.0".to_string(), false)),
            Just(("1e0".to_string(), false)),
            Just(("99999999999999999999".to_string(), false)),
            Just(("\"1\"".to_string(), false)),
        ];
        let ws = prop_oneof![Just(""), Just(" "), Just("\n  "), Just("\t")];
        (path, label, ws, any::<bool>(), any::<bool>()).prop_map(
            |((p, pp), (l, lp), w, swap, extra)| {
                let body = if swap {
                    format!("\"label\":{w}{l},{w}\"path\":{w}\"{p}\"")
                } else {
                    format!("\"path\":{w}\"{p}\"{w},{w}\"label\":{w}{l}")
                };
                let tail = if extra {
                    format!(", \"id\": {{\"k\": [1, {w}2]}}")
                } else {
                    String::new()
                };
                (
                    format!("{{{w}{body}{tail}{w}}}"),
                    pp && lp && !swap && !extra,
                )
            },
        )
    }

    fn split() -> impl Strategy<Value = (String, bool)> {
        (
            prop::collection::vec(entry(), 0..6),
            prop::collection::vec(entry(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(train, val, meta_last)| {
                let plain = train.iter().chain(&val).all(|(_, p)| *p);
                let list = |v: &[(String, bool)]| {
                    v.iter()
                        .map(|(s, _)| s.as_str())
                        .collect::<Vec<_>>()
                        .join(",\n    ")
                };
                let meta = r#""metadata": {"classes": {"a": 0, "b": 1}, "x": [1.5, null]}"#;
                let lists = format!(
                    "\"train\": [{}],\n  \"val\": [{}]",
                    list(&train),
                    list(&val)
                );
                let body = if meta_last {
                    format!("{lists},\n  {meta}")
                } else {
                    format!("{meta},\n  {lists}")
                };
                (format!("{{\n  {body},\n  \"note\": \"n\"\n}}\n"), plain)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn fast_reader_agrees_with_serde_and_takes_the_plain_shape((text, plain) in split()) {
            let fast = fast::read(&text);
            if plain {
                prop_assert!(fast.is_some(), "plain input left to serde:\n{}", text);
            }
            if let Some(f) = fast {
                prop_assert_eq!(Ok(f), serde_read(&text));
            }
        }

        #[test]
        fn mutated_input_is_never_misread(
            (text, _) in split(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![
                "", "{", "}", "[", "]", ",", ":", "\"", "\\", " ", "0", "-", "a", "\u{1}",
            ])), 1..4),
        ) {
            let mut t = text;
            for (at, with) in edits {
                let mut i = at.index(t.len() + 1);
                while !t.is_char_boundary(i) { i -= 1; }
                let end = (i + 1).min(t.len());
                let end = if t.is_char_boundary(end) { end } else { i };
                t.replace_range(i..end, with);
            }
            if let Some(f) = fast::read(&t) {
                prop_assert_eq!(Ok(f), serde_read(&t), "input:\n{}", t);
            }
        }
    }
}
