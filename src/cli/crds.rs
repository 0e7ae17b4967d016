//! `purser crds [--out DIR]`: print Purser's CRDs as multi-document YAML, or write one file per
//! CRD (`DIR/<plural>.purser.dev.yaml`, as checked in under `charts/purser/crds/`).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::api::crds;

/// Arguments of `purser crds`.
#[derive(Debug, Args)]
pub struct CrdsArgs {
    /// Write `<plural>.purser.dev.yaml` files into this directory instead of printing.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Run `purser crds`; returns the exit code.
pub fn run(args: CrdsArgs) -> i32 {
    let result = match &args.out {
        None => crds::all_yaml().map(|yaml| out!("{yaml}")).map_err(|e| e.to_string()),
        Some(dir) => write_all(dir),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

/// Write each CRD to its file in `dir`, creating the directory.
fn write_all(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for crd in crds::all() {
        let path = dir.join(crds::file_name(&crd));
        let yaml = crds::to_yaml(&crd).map_err(|e| format!("cannot serialize {}: {e}", path.display()))?;
        std::fs::write(&path, yaml).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
