//! Expected bytes derived by hand from the TFRecord framing and the protobuf wire format;
//! the CRCs were computed by a separate bitwise CRC-32C in Python and agree with
//! TensorBoard's own `masked_crc32c`.

use super::*;

#[test]
fn crc_and_mask() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(mask(0), 0xa282_ead8);
    assert_eq!(mask(0xe306_9283), 0xc78a_b0e5);
    assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
}

#[test]
fn one_framed_record() {
    #[rustfmt::skip]
    let expected = [
        0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // length 9, u64 LE
        0x37, 0xf9, 0x71, 0x39, // masked CRC-32C of the 8 length bytes
        b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8', b'9',
        0xe5, 0xb0, 0x8a, 0xc7, // masked CRC-32C of the data
    ];
    assert_eq!(record(b"123456789"), expected);
}

fn summary(wall_time: f64, step: i64, tag: &str, kind: Kind) -> Event {
    Event {
        wall_time,
        step,
        what: Some(What::Summary(Summary {
            value: vec![Value {
                tag: tag.into(),
                kind: Some(kind),
            }],
        })),
    }
}

#[test]
fn scalar_event_bytes() {
    #[rustfmt::skip]
    let expected = [
        0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f, // 1: wall_time, double 1.5
        0x10, 0x03, // 2: step, varint 3
        0x2a, 0x0d, // 5: summary, 13 bytes
        0x0a, 0x0b, // Summary 1: value, 11 bytes
        0x0a, 0x04, b'l', b'o', b's', b's', // Value 1: tag "loss"
        0x15, 0x00, 0x00, 0x80, 0x3e, // Value 2: simple_value, float 0.25
    ];
    let event = summary(1.5, 3, "loss", Kind::SimpleValue(0.25));
    assert_eq!(event.encode_to_vec(), expected);
}

#[test]
fn scalar_zero_is_still_written() {
    #[rustfmt::skip]
    let expected = [
        0x2a, 0x0a, // 5: summary, 10 bytes
        0x0a, 0x08, // Summary 1: value, 8 bytes
        0x0a, 0x01, b'x', // Value 1: tag "x"
        0x15, 0, 0, 0, 0, // Value 2: simple_value 0.0, written because it is in a oneof
    ];
    let event = summary(0.0, 0, "x", Kind::SimpleValue(0.0));
    assert_eq!(event.encode_to_vec(), expected);
}

#[test]
fn image_event_bytes() {
    let image = Image {
        height: 2,
        width: 3,
        colorspace: 4,
        encoded_image_string: b"\x89PNG".to_vec(),
    };
    #[rustfmt::skip]
    let expected = [
        0x10, 0x07, // 2: step 7 (wall_time 0 is not written)
        0x2a, 0x13, // 5: summary, 19 bytes
        0x0a, 0x11, // Summary 1: value, 17 bytes
        0x0a, 0x01, b'g', // Value 1: tag "g"
        0x22, 0x0c, // Value 4: image, 12 bytes
        0x08, 0x02, 0x10, 0x03, 0x18, 0x04, // height 2, width 3, colorspace 4
        0x22, 0x04, 0x89, b'P', b'N', b'G', // encoded_image_string
    ];
    let event = summary(0.0, 7, "g", Kind::Image(image));
    assert_eq!(event.encode_to_vec(), expected);
}

/// Splits a file into its records, checking both CRCs of each.
fn records(mut bytes: &[u8]) -> Vec<Event> {
    let mut events = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_at(8);
        assert_eq!(rest[..4], masked_crc32c(len).to_le_bytes());
        let n = u64::from_le_bytes(len.try_into().unwrap()) as usize;
        let (data, rest) = rest[4..].split_at(n);
        assert_eq!(rest[..4], masked_crc32c(data).to_le_bytes());
        events.push(Event::decode(data).unwrap());
        bytes = &rest[4..];
    }
    events
}

#[test]
fn writes_a_file_tensorboard_can_find() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("runs/tb");
    let mut w = EventWriter::create(&logs).unwrap();
    let other = EventWriter::create(&logs).unwrap();
    assert_ne!(w.path(), other.path());
    w.scalar("loss", 1, 0.5).unwrap();
    w.image("samples", 1, b"\x89PNG", 3, 2, 3).unwrap();
    let path = w.path().to_owned();
    drop(w);
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("events.out.tfevents."), "{name}");

    let events = records(&std::fs::read(&path).unwrap());
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[0].what,
        Some(What::FileVersion("brain.Event:2".into()))
    );
    assert!(events.iter().all(|e| e.wall_time > 1.6e9));
    let kinds: Vec<_> = events[1..]
        .iter()
        .map(|e| match &e.what {
            Some(What::Summary(s)) => (e.step, s.value[0].tag.as_str(), s.value[0].kind.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds[0], (1, "loss", Some(Kind::SimpleValue(0.5))));
    let Some(Kind::Image(image)) = &kinds[1].2 else {
        panic!("{:?}", kinds[1])
    };
    assert_eq!((image.width, image.height, image.colorspace), (3, 2, 3));
}

#[test]
fn create_names_the_path_it_could_not_make() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let err = EventWriter::create(&file.join("tb"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with(&format!("{}: ", file.join("tb").display())),
        "{err}"
    );
}
