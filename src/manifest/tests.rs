use super::*;
use crate::plan::{plan, PlanInput};
use crate::split::Split;
use pretty_assertions::assert_eq;
use std::path::Path;

const SPLIT: &str = r#"{"metadata": {"classes": {"b": 1, "a": 0}, "seed": 3},
 "train": [{"path": "x/0.png", "label": 0, "id": {"k": [1, 2]}}, {"path": "x/\"1\".png", "label": 1},
           {"path": "x/2.png", "label": 0}],
 "val": [{"path": "v.png", "label": 1}], "test": [], "extra_top": 1}"#;

fn manifest(balancing: Option<&Balancing>) -> String {
    let split = Split::parse(SPLIT, Path::new("s.json")).unwrap();
    let labels = split.train_labels();
    let p = plan(&PlanInput {
        labels: &labels,
        classes: &split.classes,
        balancing,
        seed: 5,
        num_classes: None,
        synthetic: None,
    })
    .unwrap();
    let mut out = Vec::new();
    let prov = Provenance {
        seed: 5,
        config: balancing,
        split_file: "s.json",
        split_sha256: "abc",
        overrides: &[],
        synthetic: None,
    };
    write(&mut out, &split, &p, &prov).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn exact_layout_of_an_upsampled_manifest() {
    let mut b = Balancing::default();
    b.upsampling.enabled = true;
    let text = manifest(Some(&b));
    let version = env!("CARGO_PKG_VERSION");
    let expected = format!(
        r#"{{
  "metadata": {{
    "classes": {{
      "b": 1,
      "a": 0
    }},
    "seed": 3
  }},
  "train": [
    {{"path": "x/0.png", "label": 0, "id": {{"k": [1, 2]}}}},
    {{"path": "x/\"1\".png", "label": 1}},
    {{"path": "x/\"1\".png", "label": 1}},
    {{"path": "x/2.png", "label": 0}}
  ],
  "val": [
    {{"path": "v.png", "label": 1}}
  ],
  "test": [],
  "extra_top": 1,
  "balancing": {{
    "format_version": 1,
    "tool": {{
      "name": "balance-split",
      "version": "{version}"
    }},
    "seed": 5,
    "strategy": "upsampling",
    "overridden": [],
    "warnings": [],
    "config": {{
      "weighted_sampler": {{
        "enabled": false,
        "method": "inverse_frequency",
        "beta": 0.999,
        "manual_weights": null,
        "replacement": true,
        "num_samples": null
      }},
      "downsampling": {{
        "enabled": false,
        "target_ratio": 1.0
      }},
      "upsampling": {{
        "enabled": true,
        "target_ratio": 1.0
      }},
      "class_weights": {{
        "enabled": false,
        "method": "inverse_frequency",
        "beta": 0.999,
        "manual_weights": null,
        "normalize": true
      }}
    }},
    "source": {{
      "split_file": "s.json",
      "split_sha256": "abc",
      "train_samples": 3
    }},
    "class_counts": {{
      "before": {{
        "a": 2,
        "b": 1
      }},
      "after": {{
        "a": 2,
        "b": 2
      }}
    }},
    "sampler": null,
    "loss": null,
    "source_index": [
      0,
      1,
      1,
      2
    ]
  }}
}}
"#
    );
    assert_eq!(text, expected);
    // And it is JSON that reads back as a split with the balanced train list.
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["train"].as_array().unwrap().len(), 4);
    assert_eq!(v["train"][0]["id"]["k"][1], 2);
}

#[test]
fn no_balancing_section_records_null_config_and_identity_index() {
    let text = manifest(None);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["balancing"]["config"], Value::Null);
    assert_eq!(v["balancing"]["strategy"], "none");
    assert_eq!(v["balancing"]["source_index"], serde_json::json!([0, 1, 2]));
    assert!(text.contains("  \"train\": [\n    {\"path\": \"x/0.png\""));
}

#[test]
fn weighted_sampler_and_loss_sections() {
    let mut b = Balancing::default();
    b.weighted_sampler.enabled = true;
    b.class_weights.enabled = true;
    let v: Value = serde_json::from_str(&manifest(Some(&b))).unwrap();
    let s = &v["balancing"]["sampler"];
    assert_eq!(s["class_weights"], serde_json::json!([1.5, 3.0]));
    assert_eq!(s["replacement"], true);
    assert_eq!(s["num_samples"], 3);
    assert_eq!(
        s["expected_counts"],
        serde_json::json!({"a": 1.5, "b": 1.5})
    );
    assert_eq!(
        v["balancing"]["class_counts"]["after"],
        serde_json::json!({"a": 2, "b": 1})
    );
    let l = &v["balancing"]["loss"];
    assert_eq!(
        l["class_weights"],
        serde_json::json!([0.6666666666666666, 1.3333333333333333])
    );
    assert_eq!(l["method"], "inverse_frequency");
    assert_eq!(l["normalize"], true);
}
