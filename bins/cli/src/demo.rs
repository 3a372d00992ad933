//! `akv2k8s demo`: the whole controller against in-process fakes, step by step.
//!
//! Each step is one `async` function of [`Demo`] run through [`Steps::run`], which prints one
//! line (`✓`/`✗`, title, duration, detail) and stops the demo at the first failure. The steps
//! verify what they did (every AzureKeyVaultSecret `Ready`, outputs equal to what
//! `akv2k8s render` computes for them and to what the bundled examples promise, the rotation
//! reaching every Secret that reads the rotated object, no writes in a steady state). A later
//! step (e.g. a Pod with env injection once the webhook exists) is one more method and one
//! more line in [`run`]. After the steps, whether they passed or not, the demo prints the
//! Secrets and ConfigMaps (values masked unless `--show-values`), each AzureKeyVaultSecret's
//! status, and the Key Vault, Entra and API calls per phase, from the fakes' request logs.

mod expect;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_sync::crd::ObjectType;
use k8s_sync::crd::v2beta1::AzureKeyVaultSecret;
use k8s_sync::preview::{ReadOptions, comparable, merge, preview};
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::wait::await_condition;
use serde_json::Value;
use testkit::fixtures::Fixture;
use testkit::vault::SecretSpec;

use crate::args::DemoArgs;
use crate::controller::RunningController;
use crate::fakes::{Cluster, DEADLINE};
use crate::manifests::{self, Document};
use crate::show;

use report::Mark;

/// Runs the demo; `Ok(false)` when a step failed (it says which).
///
/// # Errors
///
/// Only for output that cannot be written; step failures are reported, not returned.
pub async fn run(args: DemoArgs) -> anyhow::Result<bool> {
    println!(
        "akv2k8s demo: the akv2k8s-rs controller against in-process fakes of the Kubernetes API \
         server, Azure Key Vault and Entra ID on 127.0.0.1 (no cluster, no Azure account)\n"
    );
    let started = Instant::now();
    let mut demo = Demo::new(&args);
    let mut steps = Steps::default();
    let passed = async {
        steps
            .run("load the vault fixture and the examples", demo.load())
            .await?;
        steps
            .run(
                "start the fakes: Kubernetes API server, Key Vault, Entra ID",
                demo.start_fakes(),
            )
            .await?;
        steps
            .run("install the AzureKeyVaultSecret CRD", demo.install_crd())
            .await?;
        steps
            .run(
                "start the controller (k8s_sync::run)",
                demo.start_controller(),
            )
            .await?;
        steps.run("apply the examples", demo.apply()).await?;
        steps
            .run("every AzureKeyVaultSecret is Ready", demo.wait_ready())
            .await?;
        steps
            .run(
                "outputs hold what the examples ask for",
                demo.verify_outputs(),
            )
            .await?;
        let title = format!("rotate {} in Key Vault; the Secrets follow", args.rotate);
        steps.run(&title, demo.rotate()).await?;
        steps
            .run(
                "steady state: Key Vault re-read, nothing written",
                demo.steady_state(),
            )
            .await?;
        steps
            .run("stop the controller", demo.stop_controller())
            .await?;
        anyhow::Ok(())
    }
    .await
    .is_ok();
    demo.print_sections().await;
    if let Some(cluster) = &demo.cluster {
        cluster.shutdown();
    }
    match (passed, steps.failed) {
        (true, _) => println!(
            "\ndemo passed: {} steps in {}",
            steps.passed,
            show::duration(started.elapsed())
        ),
        (false, failed) => println!(
            "\ndemo FAILED at step {} ({}) after {}",
            steps.passed + 1,
            failed.unwrap_or_default(),
            show::duration(started.elapsed())
        ),
    }
    Ok(passed)
}

/// Runs steps in order and prints a line for each.
#[derive(Debug, Default)]
struct Steps {
    passed: usize,
    failed: Option<String>,
}

impl Steps {
    /// Runs one step: `fut` returns a detail for the line, or the error that stops the demo.
    async fn run(
        &mut self,
        title: &str,
        fut: impl Future<Output = anyhow::Result<String>>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let result = match tokio::time::timeout(DEADLINE * 2, fut).await {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("no result within {DEADLINE:?}")),
        };
        let took = show::duration(started.elapsed());
        match result {
            Ok(detail) => {
                self.passed += 1;
                println!("  ✓ {title:<58} {took:>9}  {detail}");
                Ok(())
            }
            Err(e) => {
                self.failed = Some(title.to_owned());
                println!("  ✗ {title:<58} {took:>9}  FAILED: {e:#}");
                Err(e)
            }
        }
    }
}

/// The demo's state, shared by its steps.
struct Demo {
    show_values: bool,
    fixture_path: Option<std::path::PathBuf>,
    examples_path: Option<std::path::PathBuf>,
    rotate: String,
    resync: Duration,
    fixture: Option<Fixture>,
    docs: Vec<Document>,
    akvs: Vec<AzureKeyVaultSecret>,
    cluster: Option<Cluster>,
    controller: Option<RunningController>,
    /// Request-log positions at the start of each phase, for the call summary.
    phases: Vec<(&'static str, Mark)>,
}

impl Demo {
    fn new(args: &DemoArgs) -> Self {
        Self {
            show_values: args.show_values,
            fixture_path: args.fixture.clone(),
            examples_path: args.examples.clone(),
            rotate: args.rotate.clone(),
            resync: args.resync_period,
            fixture: None,
            docs: Vec::new(),
            akvs: Vec::new(),
            cluster: None,
            controller: None,
            phases: Vec::new(),
        }
    }

    fn cluster(&self) -> anyhow::Result<&Cluster> {
        self.cluster.as_ref().context("the fakes are not running")
    }

    fn begin_phase(&mut self, name: &'static str) {
        if let Some(c) = &self.cluster {
            self.phases.push((name, Mark::of(c)));
        }
    }

    async fn load(&mut self) -> anyhow::Result<String> {
        let fixture = manifests::fixture(self.fixture_path.as_deref())?;
        self.docs = match &self.examples_path {
            Some(path) => manifests::read_paths(std::slice::from_ref(path))?,
            None => manifests::examples()?,
        };
        for doc in &self.docs {
            if let Some(a) = doc.akvs()? {
                self.akvs.push(a);
            }
        }
        if self.akvs.is_empty() {
            bail!("the examples hold no AzureKeyVaultSecret");
        }
        let (secrets, certs, keys) = fixture.vaults.iter().fold((0, 0, 0), |(s, c, k), v| {
            (
                s + v.secrets.len(),
                c + v.certificates.len(),
                k + v.keys.len(),
            )
        });
        let detail = format!(
            "{}: {}, {}, {}, {}; {}: {}",
            self.fixture_path
                .as_ref()
                .map_or("examples/vault-fixture.yaml".into(), |p| p
                    .display()
                    .to_string()),
            show::count(fixture.vaults.len(), "vault"),
            show::count(secrets, "secret"),
            show::count(certs, "certificate"),
            show::count(keys, "key"),
            self.examples_path
                .as_ref()
                .map_or("examples/akvs/".into(), |p| p.display().to_string()),
            show::count(self.akvs.len(), "AzureKeyVaultSecret")
        );
        self.fixture = Some(fixture);
        Ok(detail)
    }

    async fn start_fakes(&mut self) -> anyhow::Result<String> {
        let fixture = self.fixture.as_ref().context("no fixture loaded")?;
        let cluster = Cluster::start(fixture).await?;
        let detail = format!(
            "API {}, Key Vault {}, Entra {} (HTTPS, testkit CA); fixture seeded",
            cluster.api.url(),
            cluster.azure.kv.addr(),
            cluster.azure.entra.addr()
        );
        self.cluster = Some(cluster);
        Ok(detail)
    }

    async fn install_crd(&mut self) -> anyhow::Result<String> {
        self.cluster()?.install_crd().await?;
        Ok(format!(
            "{} (served: {})",
            k8s_sync::crd::CRD_NAME,
            k8s_sync::crd::VERSIONS.join(", ")
        ))
    }

    async fn start_controller(&mut self) -> anyhow::Result<String> {
        let cluster = self.cluster()?;
        let controller = RunningController::start(cluster, self.resync).await?;
        let detail = format!(
            "AUTH_TYPE=environment (client secret of {:?}, via Entra), --azure-resync-period={:?}",
            cluster.azure.login.principal, self.resync
        );
        self.controller = Some(controller);
        Ok(detail)
    }

    async fn apply(&mut self) -> anyhow::Result<String> {
        self.begin_phase("initial sync");
        self.cluster()?.apply(&self.docs).await?;
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for d in &self.docs {
            *kinds
                .entry(d.value["kind"].as_str().unwrap_or_default())
                .or_default() += 1;
        }
        Ok(kinds
            .iter()
            .map(|(k, n)| show::count(*n, k))
            .collect::<Vec<_>>()
            .join(", "))
    }

    /// Waits until every AKVS has a `Ready` condition for its current generation; fails
    /// naming each one that is not `Ready=True`.
    async fn wait_ready(&mut self) -> anyhow::Result<String> {
        let cluster = self.cluster()?;
        let waits = self.akvs.iter().map(|a| {
            let api: Api<AzureKeyVaultSecret> =
                Api::namespaced(cluster.client.clone(), &a.namespace().unwrap_or_default());
            let name = a.name_any();
            async move {
                let decided = |a: Option<&AzureKeyVaultSecret>| {
                    a.is_some_and(|a| {
                        a.status.as_ref().is_some_and(|s| {
                            s.ready().is_some() && s.observed_generation == a.metadata.generation
                        })
                    })
                };
                await_condition(api, &name, decided)
                    .await
                    .with_context(|| format!("watching AzureKeyVaultSecret {name}"))?
                    .with_context(|| format!("AzureKeyVaultSecret {name} was deleted"))
            }
        });
        let live = tokio::time::timeout(DEADLINE, futures::future::try_join_all(waits))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "not every AzureKeyVaultSecret has a Ready condition within {DEADLINE:?}"
                )
            })??;
        let failed: Vec<String> = live
            .iter()
            .filter_map(|a| {
                let c = a.status.as_ref().and_then(|s| s.ready())?;
                (!c.is_ready())
                    .then(|| format!("{} (Ready={} {})", a.name_any(), c.status, c.reason))
            })
            .collect();
        if !failed.is_empty() {
            bail!(
                "{} of {} not Ready: {} (messages below)",
                failed.len(),
                live.len(),
                failed.join(", ")
            );
        }
        self.akvs = live;
        let reasons: BTreeSet<String> = self
            .akvs
            .iter()
            .filter_map(|a| a.status.as_ref()?.ready().map(|c| c.reason.clone()))
            .collect();
        Ok(format!(
            "{n}/{n} Ready=True ({})",
            reasons.into_iter().collect::<Vec<_>>().join(", "),
            n = self.akvs.len()
        ))
    }

    /// The outputs in the API server equal `akv2k8s render` of the live AKVS (same Key Vault,
    /// same client path), and, for the bundled examples, what each example promises.
    async fn verify_outputs(&mut self) -> anyhow::Result<String> {
        self.begin_phase("verification (render reads Key Vault)");
        let cluster = self.cluster()?;
        let (key_vault, suffix) = cluster.azure.key_vaults()?;
        let opts = ReadOptions {
            vault_dns_suffix: suffix,
            ..ReadOptions::default()
        };
        let mut previews = Vec::new();
        for a in &self.akvs {
            let p = preview(a, key_vault.as_ref(), &opts)
                .await
                .map_err(|f| anyhow::Error::from(f.error))
                .with_context(|| format!("render {}", a.name_any()))?;
            previews.extend(p);
        }
        let previews = merge(previews);
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for want in &previews {
            let live = self.live_output(want).await?;
            let (want, got) = (comparable(want), comparable(&live));
            if want != got {
                bail!(
                    "{} differs from `akv2k8s render`: {}",
                    describe(&got),
                    expect::difference(&want, &got)
                );
            }
            *counts
                .entry(want["kind"].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        let mut detail = counts
            .iter()
            .map(|(k, n)| show::count(*n, k))
            .collect::<Vec<_>>()
            .join(", ");
        detail.push_str(" equal to `akv2k8s render`");
        if self.examples_path.is_none() {
            let fixture = self.fixture.as_ref().context("no fixture loaded")?;
            let mut checked = 0;
            for e in expect::BUNDLED {
                let live = self
                    .live_output(&serde_json::json!({"kind": e.kind, "metadata": {
                        "namespace": expect::NAMESPACE, "name": e.name}}))
                    .await?;
                checked += e.check(&live, fixture)?;
            }
            detail.push_str(&format!(
                "; {} bundled examples' {checked} checks pass",
                expect::BUNDLED.len()
            ));
        }
        Ok(detail)
    }

    /// The Secret or ConfigMap `want` names, as JSON, from the API server.
    async fn live_output(&self, want: &Value) -> anyhow::Result<Value> {
        let client = self.cluster()?.client.clone();
        let ns = want["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = want["metadata"]["name"].as_str().unwrap_or_default();
        let got = match want["kind"].as_str() {
            Some("ConfigMap") => Api::<ConfigMap>::namespaced(client, ns)
                .get_opt(name)
                .await?
                .map(serde_json::to_value),
            _ => Api::<Secret>::namespaced(client, ns)
                .get_opt(name)
                .await?
                .map(serde_json::to_value),
        };
        let mut got = got
            .with_context(|| format!("{} {ns}/{name} does not exist", want["kind"]))?
            .context("reading an output")?;
        // k8s-openapi's typed objects omit apiVersion and kind when serialised.
        got["apiVersion"] = "v1".into();
        got["kind"] = want["kind"].clone();
        Ok(got)
    }

    /// Adds a version to the `--rotate` secret; waits until every AKVS reading it reports
    /// the new version, then checks that their outputs hold the new value.
    async fn rotate(&mut self) -> anyhow::Result<String> {
        self.begin_phase("rotation");
        let cluster = self.cluster()?;
        let readers: Vec<&AzureKeyVaultSecret> = self
            .akvs
            .iter()
            .filter(|a| {
                a.spec.vault.object.name == self.rotate
                    && a.spec.vault.object.type_ == ObjectType::Secret
            })
            .collect();
        let Some(first) = readers.first() else {
            bail!(
                "no AzureKeyVaultSecret reads the Key Vault secret {:?} (type secret): name one with --rotate",
                self.rotate
            );
        };
        let vault = first.spec.vault.name.clone();
        let content_type = self
            .fixture
            .as_ref()
            .and_then(|f| expect::fixture_content_type(f, &self.rotate));
        let value = format!(
            "{}-rotated-{}",
            self.rotate,
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
        );
        let mut spec = SecretSpec::new(value.clone());
        if let Some(ct) = &content_type {
            spec = spec.content_type(ct);
        }
        let started = Instant::now();
        let version = cluster
            .azure
            .kv
            .set_secret(&vault, &self.rotate, spec)
            .with_context(|| format!("adding a version to {vault}/{}", self.rotate))?;
        let waits = readers.iter().map(|a| {
            let api: Api<AzureKeyVaultSecret> =
                Api::namespaced(cluster.client.clone(), &a.namespace().unwrap_or_default());
            let name = a.name_any();
            let version = version.clone();
            async move {
                await_condition(api, &name, move |a: Option<&AzureKeyVaultSecret>| {
                    a.and_then(|a| a.status.as_ref())
                        .and_then(|s| s.object_version.as_deref())
                        .is_some_and(|v| same_version(v, &version))
                })
                .await
                .with_context(|| format!("watching AzureKeyVaultSecret {name}"))
            }
        });
        tokio::time::timeout(DEADLINE, futures::future::try_join_all(waits))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the new version did not reach every AzureKeyVaultSecret within {DEADLINE:?}"
                )
            })??;
        let followed = started.elapsed();
        let mut outputs = Vec::new();
        for a in &readers {
            let Some(out) = a.spec.secret_output() else {
                continue;
            };
            let Some(key) = &out.data_key else { continue };
            let secret = Api::<Secret>::namespaced(
                cluster.client.clone(),
                &a.namespace().unwrap_or_default(),
            )
            .get(&out.name)
            .await
            .with_context(|| format!("reading Secret {}", out.name))?;
            let held = secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|v| v.0.as_slice());
            if held != Some(value.as_bytes()) {
                bail!(
                    "AzureKeyVaultSecret {} reports the new version, but Secret {} key {key} does not hold the new value",
                    a.name_any(),
                    out.name
                );
            }
            outputs.push(format!("{}[{key}]", out.name));
        }
        outputs.dedup();
        Ok(format!(
            "version {} reached {} ({} AzureKeyVaultSecrets) {} after the write",
            short_version(&version),
            outputs.join(", "),
            readers.len(),
            show::duration(followed)
        ))
    }

    /// One whole resync interval after every object was refreshed: Key Vault is read again,
    /// the controller writes nothing.
    async fn steady_state(&mut self) -> anyhow::Result<String> {
        let cluster = self.cluster()?;
        let objects: BTreeSet<String> =
            report::kv_reads_by_object(cluster, 0).into_keys().collect();
        // First every object refreshed once more: writes of the rotation are over.
        let base = report::kv_reads_by_object(cluster, 0);
        report::wait_kv_reads(cluster, &objects, &base).await;
        self.begin_phase("steady state");
        let cluster = self.cluster()?;
        let start = Mark::of(cluster);
        let base = report::kv_reads_by_object(cluster, 0);
        let started = Instant::now();
        report::wait_kv_reads(cluster, &objects, &base).await;
        let end = Mark::of(cluster);
        let writes = report::controller_writes(cluster, start, end);
        if !writes.is_empty() {
            bail!(
                "the controller wrote while Key Vault was unchanged: {}",
                report::by_resource(&writes)
            );
        }
        Ok(format!(
            "{} Key Vault reads of {} objects for {} AzureKeyVaultSecrets in {}; 0 API writes",
            end.kv_authorized - start.kv_authorized,
            objects.len(),
            self.akvs.len(),
            show::duration(started.elapsed())
        ))
    }

    async fn stop_controller(&mut self) -> anyhow::Result<String> {
        self.begin_phase("shutdown");
        let controller = self
            .controller
            .take()
            .context("the controller is not running")?;
        controller.stop().await?;
        Ok("k8s_sync::run returned Ok".into())
    }

    /// Outputs, AKVS status and the calls per phase (what exists, also after a failure).
    async fn print_sections(&mut self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if let Some(controller) = self.controller.take() {
            // A failed step: stop the controller before reading, so the sections hold still.
            let _stopped = controller.stop().await;
        }
        println!(
            "\nSecrets and ConfigMaps ({}):",
            match self.show_values {
                true => "values shown",
                false => show::MASKED_NOTE,
            }
        );
        match report::outputs(cluster).await {
            Ok(outputs) => {
                for o in outputs {
                    print!("{}", show::object_listing(&o, self.show_values, "  "));
                }
            }
            Err(e) => println!("  (cannot list them: {e:#})"),
        }
        println!("\nAzureKeyVaultSecrets:");
        match report::akvs_table(cluster).await {
            Ok(table) => print!("{table}"),
            Err(e) => println!("  (cannot list them: {e:#})"),
        }
        println!("\nCalls (from the fakes' request logs):");
        print!("{}", report::calls(cluster, &self.phases));
    }
}

/// `Kind namespace/name` of a JSON object.
fn describe(v: &Value) -> String {
    format!(
        "{} {}/{}",
        v["kind"].as_str().unwrap_or_default(),
        v["metadata"]["namespace"].as_str().unwrap_or_default(),
        v["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Whether a status `objectVersion` names the version id Key Vault returned (either may be
/// the full URL or the bare id).
fn same_version(status: &str, written: &str) -> bool {
    status == written
        || written.ends_with(&format!("/{status}"))
        || status.ends_with(&format!("/{written}"))
}

fn short_version(v: &str) -> &str {
    let id = v.rsplit('/').next().unwrap_or(v);
    id.get(..8).unwrap_or(id)
}
