//! Manifests in: the examples embedded in the binary, files and directories (`-f`), standard
//! input (`-f -`); every document keeps its source and index so that errors can name them
//! (`deploy/a.yaml: document 2: spec.vault.object.type: unknown variant …`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use k8s_sync::crd::v2beta1::AzureKeyVaultSecret;
use k8s_sync::preview::{ManifestError, akvs_from_manifest};
use serde_json::Value;
use testkit::fixtures::Fixture;

/// The demo's vault fixture (`examples/vault-fixture.yaml`).
pub const EXAMPLE_FIXTURE: &str = include_str!("../../../examples/vault-fixture.yaml");

macro_rules! example {
    ($file:literal) => {
        (
            concat!("examples/akvs/", $file),
            include_str!(concat!("../../../examples/akvs/", $file)),
        )
    };
}
/// The demo's manifests (`examples/akvs/`), in order.
pub const EXAMPLES: [(&str, &str); 8] = [
    example!("00-namespace.yaml"),
    example!("01-plain-secret.yaml"),
    example!("02-multi-key-json.yaml"),
    example!("03-certificate-tls.yaml"),
    example!("04-key.yaml"),
    example!("05-configmap.yaml"),
    example!("06-two-akvs-one-secret.yaml"),
    example!("07-basic-auth.yaml"),
];

/// One YAML document and where it came from.
#[derive(Clone, Debug)]
pub struct Document {
    /// File name (or `<stdin>`, or the embedded example's path).
    pub source: String,
    /// 1-based index in its file.
    pub index: usize,
    /// The document.
    pub value: Value,
}

impl Document {
    /// `source: document N`, the prefix of every error about it.
    pub fn location(&self) -> String {
        format!("{}: document {}", self.source, self.index)
    }

    /// `kind name` (namespace/name when namespaced), for messages.
    pub fn describe(&self) -> String {
        let kind = self.value["kind"].as_str().unwrap_or("(no kind)");
        let name = self.value["metadata"]["name"]
            .as_str()
            .unwrap_or("(no name)");
        match self.value["metadata"]["namespace"].as_str() {
            Some(ns) => format!("{kind} {ns}/{name}"),
            None => format!("{kind} {name}"),
        }
    }

    /// The document as an AzureKeyVaultSecret at the storage version; `Ok(None)` for other
    /// kinds.
    ///
    /// # Errors
    ///
    /// An AzureKeyVaultSecret that does not fit its version's schema, at an unserved version,
    /// or without `metadata.name`; the message names the source, index and field.
    pub fn akvs(&self) -> anyhow::Result<Option<AzureKeyVaultSecret>> {
        match akvs_from_manifest(self.value.clone()) {
            Ok(akvs) if akvs.metadata.name.as_deref().is_none_or(str::is_empty) => {
                bail!("{}: metadata.name: missing", self.location())
            }
            Ok(akvs) => Ok(Some(akvs)),
            Err(ManifestError::NotAkvs { .. }) => Ok(None),
            Err(e) => bail!("{}: {e}", self.location()),
        }
    }
}

/// Parses every document of `text` (multi-document YAML; JSON is YAML too). Empty documents
/// (`---` at the end, comments only) are skipped but counted.
///
/// # Errors
///
/// Invalid YAML, or a document that is not a mapping; the message names `source`.
pub fn parse(source: &str, text: &str) -> anyhow::Result<Vec<Document>> {
    let values: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| anyhow::anyhow!("{source}: invalid YAML: {e}"))?;
    let mut docs = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let index = i + 1;
        match value {
            Value::Null => continue,
            Value::Object(_) => docs.push(Document {
                source: source.to_owned(),
                index,
                value,
            }),
            _ => bail!("{source}: document {index}: not a mapping (a Kubernetes object)"),
        }
    }
    Ok(docs)
}

/// The documents of the embedded examples.
///
/// # Errors
///
/// Never for the checked-in examples (a test parses them).
pub fn examples() -> anyhow::Result<Vec<Document>> {
    let mut docs = Vec::new();
    for (source, text) in EXAMPLES {
        docs.extend(parse(source, text)?);
    }
    Ok(docs)
}

/// The documents of `paths`: files, directories (their `*.yaml`, `*.yml` and `*.json` files,
/// sorted by name, not recursive) and `-` for standard input.
///
/// # Errors
///
/// A path cannot be read, a directory holds no manifest, or a file is not YAML.
pub fn read_paths(paths: &[PathBuf]) -> anyhow::Result<Vec<Document>> {
    let mut docs = Vec::new();
    for path in paths {
        if path == Path::new("-") {
            let text = std::io::read_to_string(std::io::stdin()).context("reading stdin")?;
            docs.extend(parse("<stdin>", &text)?);
            continue;
        }
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        let files = if meta.is_dir() {
            let files = manifest_files(path)?;
            if files.is_empty() {
                bail!(
                    "{}: no *.yaml, *.yml or *.json file in this directory",
                    path.display()
                );
            }
            files
        } else {
            vec![path.clone()]
        };
        for file in files {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            docs.extend(parse(&file.display().to_string(), &text)?);
        }
    }
    Ok(docs)
}

fn manifest_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("cannot list {}", dir.display()))?
            .path();
        let is_manifest = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if is_manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The vault fixture at `path`, or the demo's when `None`.
///
/// # Errors
///
/// The file cannot be read or is not a valid fixture (the message names the file).
pub fn fixture(path: Option<&Path>) -> anyhow::Result<Fixture> {
    match path {
        None => Fixture::from_yaml(EXAMPLE_FIXTURE).context("examples/vault-fixture.yaml"),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the vault fixture {}", path.display()))?;
            Fixture::from_yaml(&text)
                .with_context(|| format!("{}: not a valid vault fixture", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_examples_are_a_namespace_and_valid_akvs() {
        let docs = examples().expect("examples parse");
        assert_eq!(docs[0].value["kind"], "Namespace");
        let akvs: Vec<_> = docs
            .iter()
            .filter_map(|d| d.akvs().expect("valid AKVS"))
            .collect();
        assert_eq!(akvs.len(), 8, "one per example, two in 06");
        fixture(None).expect("the example fixture parses");
    }

    #[test]
    fn errors_name_the_source_the_document_and_the_field() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n\
            apiVersion: spv.no/v2beta1\nkind: AzureKeyVaultSecret\nmetadata: {name: b}\n\
            spec: {vault: {name: kv, object: {name: o, type: sekret}}}\n";
        let docs = parse("deploy/a.yaml", text).expect("YAML");
        assert!(docs[0].akvs().expect("a Namespace is skipped").is_none());
        let err = docs[1].akvs().expect_err("unknown type").to_string();
        assert!(
            err.starts_with(
                "deploy/a.yaml: document 2: spec.vault.object.type: unknown variant `sekret`"
            ),
            "{err}"
        );
    }

    #[test]
    fn scalars_and_bad_yaml_are_refused_with_the_source() {
        let err = parse("x.yaml", "just a string\n").expect_err("scalar");
        assert!(err.to_string().contains("x.yaml: document 1"), "{err}");
        let err = parse("y.yaml", "a: [1, 2\n").expect_err("bad YAML");
        assert!(err.to_string().starts_with("y.yaml: invalid YAML"), "{err}");
    }
}
