//! The Key Vault side of an `AzureKeyVaultSecret`: which object to read, the same in every version.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// AzureKeyVaultObject has information about the Azure Key Vault object to get from Azure Key Vault
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultObject {
    /// The object name in Azure Key Vault
    pub name: String,
    /// The type of object in Azure Key Vault
    #[serde(rename = "type")]
    pub type_: ObjectType,
    /// The object version in Azure Key Vault; empty or absent means the latest version
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What a secret contains, only used when type is multi-key-value-secret
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<ContentType>,
}

impl AzureKeyVaultObject {
    /// The version the spec pins, or `None` for the latest (upstream treats `""` as latest).
    pub fn pinned_version(&self) -> Option<&str> {
        self.version.as_deref().filter(|v| !v.is_empty())
    }
}

/// AzureIdentity names an identity for Key Vault authentication (`v2alpha1`, `v2beta1`).
///
/// Declared by upstream but read by no component (behaviour reference §1.2); kept so manifests
/// that set it stay valid and round-trip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AzureIdentity {
    /// Name of the azureIdentity to use for Azure Key Vault authentication
    pub name: String,
}

/// Implements a string enum: serde, `Display`, `as_str` and a structural JSON schema
/// (`type: string` + `enum`; schemars would emit `oneOf`/`const` for documented variants).
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $description:literal {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[serde(rename = $value)]
                $variant,
            )+
        }

        impl $name {
            /// Every value, in schema order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $value,)+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::schemars::JsonSchema for $name {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut ::schemars::SchemaGenerator) -> ::schemars::Schema {
                ::schemars::json_schema!({
                    "type": "string",
                    "description": $description,
                    "enum": [$($value),+],
                })
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// Which kind of Key Vault object an `AzureKeyVaultSecret` reads.
    ObjectType, "AzureKeyVaultObjectType defines which Object type to get from Azure Key Vault" {
        /// A Key Vault secret, output as is.
        Secret = "secret",
        /// A Key Vault certificate (public part, plus the private key from its backing secret).
        Certificate = "certificate",
        /// A Key Vault key (public part).
        Key = "key",
        /// A Key Vault secret holding a flat JSON or YAML map, one output key per entry.
        MultiKeyValueSecret = "multi-key-value-secret",
    }
}

string_enum! {
    /// How a `multi-key-value-secret` is encoded.
    ContentType, "AzureKeyVaultObjectContentType defines what content type a secret contains, only used when type is multi-key-value-secret" {
        /// A flat JSON object.
        Json = "application/x-json",
        /// A flat YAML map.
        Yaml = "application/x-yaml",
    }
}
