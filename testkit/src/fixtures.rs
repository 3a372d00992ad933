//! Fixture files (YAML) for vaults, objects and principals.
