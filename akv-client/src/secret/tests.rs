use proptest::prelude::*;

use super::*;

const S: &str = "  alsdjfl ljasfk   ";
const B64_S: &str = "ICBhbHNkamZsIGxqYXNmayAgIA==";

fn run(names: &[&str], input: &str) -> Result<String> {
    let t = Transform::parse_all(names)?;
    let out = apply_transforms("obj", &t, &SecretValue::from(input))?;
    Ok(out.as_str().expect("utf-8").to_owned())
}

#[test]
fn upstream_transform_cases_pass() {
    assert_eq!(run(&["trim"], S).expect("trim"), "alsdjfl ljasfk");
    assert_eq!(run(&["base64decode"], B64_S).expect("decode"), S);
    assert_eq!(run(&["base64encode"], S).expect("encode"), B64_S);
    assert_eq!(
        run(&["base64encode", "base64decode", "trim"], S).expect("all"),
        "alsdjfl ljasfk"
    );
    assert_eq!(run(&[], S).expect("none"), S);
    let e = run(&["nonexistant"], S).expect_err("unknown");
    assert!(e.to_string().contains("'nonexistant'"), "{e}");
    assert!(run(&["base64decode"], "%%%").is_err());
}

#[test]
fn secret_values_redact_debug() {
    let v = SecretValue::from("hunter2");
    let dbg = format!("{v:?}");
    assert!(!dbg.contains("hunter2"));
    assert_eq!(dbg, "SecretValue(7 bytes)");
}

fn multi(ct: Option<&str>, text: &str) -> Result<Vec<(String, String)>> {
    Ok(parse_multi_key("obj", ct, &SecretValue::from(text))?
        .into_iter()
        .map(|(k, v)| (k, v.as_str().expect("utf-8").to_owned()))
        .collect())
}

#[test]
fn multi_key_json_and_yaml_give_the_same_flat_map() {
    let json = r#"{"someKey":"someValue","someOtherKey":"someOtherValue"}"#;
    let yaml = "someKey: someValue\nsomeOtherKey: someOtherValue\n";
    let want = vec![
        ("someKey".to_owned(), "someValue".to_owned()),
        ("someOtherKey".to_owned(), "someOtherValue".to_owned()),
    ];
    let mut got = multi(Some(CONTENT_TYPE_JSON), json).expect("json");
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got, want_sorted);
    let mut got = multi(Some(CONTENT_TYPE_YAML), yaml).expect("yaml");
    got.sort();
    assert_eq!(got, want_sorted);
}

#[test]
fn yaml_scalars_keep_their_literal_text() {
    let got = multi(
        Some(CONTENT_TYPE_YAML),
        "a: 01\nb: true\nc: 1.50\nd: yes\ne:\nf: 'quoted'\n",
    )
    .expect("yaml");
    let get = |k: &str| {
        got.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("a"), Some("01"));
    assert_eq!(get("b"), Some("true"));
    assert_eq!(get("c"), Some("1.50"));
    assert_eq!(get("d"), Some("yes"));
    assert_eq!(get("e"), Some(""));
    assert_eq!(get("f"), Some("quoted"));
}

#[test]
fn nested_values_are_errors_naming_the_key() {
    let e =
        multi(Some(CONTENT_TYPE_JSON), r#"{"ok":"x","deep":{"a":"b"}}"#).expect_err("nested json");
    assert!(
        matches!(&e, Error::MultiKeyNested { key, found: "map", .. } if key == "deep"),
        "{e}"
    );
    let e = multi(Some(CONTENT_TYPE_JSON), r#"{"n":1}"#).expect_err("number");
    assert!(e.to_string().contains("'n'"), "{e}");
    let e = multi(Some(CONTENT_TYPE_YAML), "ok: x\nlist:\n  - a\n").expect_err("nested yaml");
    assert!(
        matches!(&e, Error::MultiKeyNested { key, found: "list", .. } if key == "list"),
        "{e}"
    );
}

#[test]
fn content_type_is_required_and_checked() {
    assert!(matches!(
        multi(None, "{}"),
        Err(Error::MultiKeyNoContentType)
    ));
    let e = multi(Some("text/plain"), "{}").expect_err("ct");
    assert!(e.to_string().contains("'text/plain'"), "{e}");
    let e = multi(Some(CONTENT_TYPE_JSON), r#"{"secret-value-in-error""#).expect_err("bad json");
    assert!(!e.to_string().contains("secret-value-in-error"), "{e}");
    let e = multi(Some(CONTENT_TYPE_YAML), "a: [unclosed-secret").expect_err("bad yaml");
    assert!(!e.to_string().contains("unclosed-secret"), "{e}");
}

proptest! {
    #[test]
    fn base64_encode_then_decode_is_identity(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let v = SecretValue::new(bytes.clone());
        let out = apply_transforms("o", &[Transform::Base64Encode, Transform::Base64Decode], &v).expect("round trip");
        prop_assert_eq!(out.as_bytes(), bytes.as_slice());
    }

    #[test]
    fn trim_is_idempotent_and_matches_str_trim(s in "\\PC*") {
        let once = Transform::Trim.apply("o", &SecretValue::from(s.as_str())).expect("trim");
        prop_assert_eq!(once.as_str(), Some(s.trim()));
        let twice = Transform::Trim.apply("o", &once).expect("trim");
        prop_assert_eq!(twice, once);
    }

    #[test]
    fn transforms_apply_in_list_order(s in "[ a-z]{0,20}") {
        let encode_then_trim = run(&["base64encode", "trim"], &s).expect("ok");
        prop_assert_eq!(encode_then_trim, base64::engine::general_purpose::STANDARD.encode(s.as_bytes()));
        let trim_then_encode = run(&["trim", "base64encode"], &s).expect("ok");
        prop_assert_eq!(trim_then_encode, base64::engine::general_purpose::STANDARD.encode(s.trim().as_bytes()));
    }
}
