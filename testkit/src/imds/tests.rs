use super::*;

#[test]
fn client_ids_are_redacted_as_nmi_does() {
    assert_eq!(
        redact("00000000-1111-2222-3333-444455556666"),
        "0000##### REDACTED #####6666"
    );
    assert_eq!(redact("short"), "short");
}

#[test]
fn nmi_errors_are_plain_text_lines() {
    let r = nmi_error(StatusCode::NOT_FOUND, "boom");
    assert_eq!(&r.body[..], b"boom\n");
    assert!(
        r.headers
            .iter()
            .any(|(n, v)| n == http::header::CONTENT_TYPE && v == "text/plain; charset=utf-8")
    );
}
