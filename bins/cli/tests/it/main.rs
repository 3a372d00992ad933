//! The `akv2k8s` binary as users run it: `demo`, `render`, `sandbox` (with kubectl), `crd`,
//! `version`, `--help`.

mod cli;
mod demo;
mod render;
mod sandbox;
mod support;
