//! Loading catalogs: a user's file (`--catalog FILE`, JSON or gzip-compressed JSON) or the
//! AWS us-east-1 snapshot embedded in the binary.
//!
//! In: bytes from a file or from `catalog/aws-us-east-1.json.gz` (compiled in). Out: a
//! validated `Catalog`, or a `CatalogError` naming the file.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use flate2::read::GzDecoder;
use purser_cloudprovider::CatalogFile;

use super::Catalog;
use super::error::CatalogError;

/// The embedded snapshot: gzip-compressed JSON written by `purser-catalog-gen`.
pub static EMBEDDED_GZ: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/catalog/aws-us-east-1.json.gz"));

/// The name used for the embedded snapshot in error messages.
pub const EMBEDDED_NAME: &str = "<embedded catalog/aws-us-east-1.json.gz>";

static EMBEDDED: OnceLock<Catalog> = OnceLock::new();

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl Catalog {
    /// Load a catalog file: JSON, or gzip-compressed JSON (detected from its first bytes).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Catalog, CatalogError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| CatalogError::Read {
            path: origin.clone(),
            source,
        })?;
        Catalog::from_bytes(&bytes, &origin)
    }

    /// Parse catalog bytes (JSON or gzip-compressed JSON); `origin` names them in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Catalog, CatalogError> {
        let spec = spec_from_bytes(bytes, origin)?;
        Catalog::from_spec(spec).map_err(|source| CatalogError::Invalid {
            path: origin.to_string(),
            source: Box::new(source),
        })
    }

    /// The bundled AWS us-east-1 snapshot (a clone of the cached, decoded copy).
    pub fn embedded() -> Catalog {
        Catalog::embedded_ref().clone()
    }

    /// The bundled AWS us-east-1 snapshot, decoded once and cached for the process.
    pub fn embedded_ref() -> &'static Catalog {
        EMBEDDED.get_or_init(|| {
            // The snapshot is generated and validated by purser-catalog-gen and loaded by the
            // unit test `embedded_catalog_loads`, so a failure here is a build defect.
            Catalog::from_bytes(EMBEDDED_GZ, EMBEDDED_NAME)
                .expect("the embedded catalog snapshot is valid (covered by a unit test)")
        })
    }
}

/// Decode bytes into the wire format without validating it.
pub fn spec_from_bytes(bytes: &[u8], origin: &str) -> Result<CatalogFile, CatalogError> {
    let json: std::borrow::Cow<'_, [u8]> = if bytes.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|source| CatalogError::Gzip {
                path: origin.to_string(),
                source,
            })?;
        out.into()
    } else {
        bytes.into()
    };
    serde_json::from_slice(&json).map_err(|source| CatalogError::Json {
        path: origin.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CapacityType;
    use crate::model::labels;
    use crate::model::quantity::Quantity;
    use crate::model::resources::{CPU, MEMORY, NVIDIA_GPU, PODS};

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    fn temp_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("purser-catalog-{}-{name}", std::process::id()))
    }

    #[test]
    fn embedded_catalog_loads() {
        let catalog = Catalog::from_bytes(EMBEDDED_GZ, EMBEDDED_NAME).unwrap();
        assert_eq!(catalog.region, "us-east-1");
        assert!(catalog.instance_types.len() > 500);
        assert!(catalog.instance_types.windows(2).all(|w| w[0].name < w[1].name));

        let m5 = catalog.find("m5.large").unwrap();
        assert_eq!(m5.capacity.get(CPU), q("2"));
        assert_eq!(m5.capacity.get(MEMORY), q("8192Mi"));
        assert_eq!(m5.allocatable.get(CPU), q("1930m"));
        assert_eq!(m5.allocatable.get(MEMORY), q("7518Mi"));
        assert_eq!(m5.allocatable.get(PODS), q("29"));
        assert_eq!(m5.labels[labels::ARCH], "amd64");
        let od = m5
            .offerings
            .iter()
            .find(|o| o.capacity_type == CapacityType::OnDemand)
            .unwrap();
        assert!(!od.price_estimated && od.price > 0.0);
        let spot = m5
            .offerings
            .iter()
            .find(|o| o.capacity_type == CapacityType::Spot)
            .unwrap();
        assert!(spot.price_estimated && spot.price < od.price);
        assert!(spot.interruption_rate.is_some());

        let p4d = catalog.find("p4d.24xlarge").unwrap();
        assert_eq!(p4d.capacity.get(NVIDIA_GPU), q("8"));
        assert_eq!(p4d.allocatable.get(NVIDIA_GPU), q("8"));
        assert_eq!(p4d.allocatable.get(CPU), q("95690m"));
        assert_eq!(p4d.allocatable.get(MEMORY), q("1171186Mi"));
        assert_eq!(p4d.allocatable.get(PODS), q("737"));
        assert_eq!(p4d.labels[labels::INSTANCE_GPU_NAME], "a100");
        assert_eq!(p4d.labels["karpenter.k8s.aws/instance-gpu-name"], "a100");
        assert_eq!(p4d.labels[labels::INSTANCE_GPU_MANUFACTURER], "nvidia");
        assert_eq!(p4d.labels[labels::INSTANCE_CATEGORY], "p");
        assert_eq!(p4d.labels[labels::INSTANCE_GENERATION], "4");

        let graviton = catalog.find("m7g.large").unwrap();
        assert_eq!(graviton.labels[labels::ARCH], "arm64");

        // The cached copy is the same catalog.
        assert_eq!(Catalog::embedded_ref(), &catalog);
        assert_eq!(Catalog::embedded().instance_types.len(), catalog.instance_types.len());
    }

    #[test]
    fn reads_json_and_gzip_files() {
        let json = r#"{"region": "test", "reservation": "none", "instanceTypes": [
            {"name": "small", "capacity": {"cpu": "2", "memory": "4Gi"},
             "offerings": [{"zone": "z1", "capacityType": "on-demand", "price": 0.1}]}]}"#;
        let plain = temp_path("plain.json");
        std::fs::write(&plain, json).unwrap();
        let catalog = Catalog::from_file(&plain).unwrap();
        assert_eq!(catalog.find("small").unwrap().allocatable.get(CPU), q("2"));

        let gz = temp_path("packed.json.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, json.as_bytes()).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(Catalog::from_file(&gz).unwrap(), catalog);
        std::fs::remove_file(plain).unwrap();
        std::fs::remove_file(gz).unwrap();
    }

    #[test]
    fn file_errors_name_the_path() {
        let missing = temp_path("missing.json");
        let e = Catalog::from_file(&missing).unwrap_err().to_string();
        assert!(e.starts_with("cannot read catalog file "), "{e}");
        assert!(e.contains(&missing.display().to_string()), "{e}");

        let bad = temp_path("bad.json");
        std::fs::write(&bad, "{\"instanceTypes\": [ }").unwrap();
        let e = Catalog::from_file(&bad).unwrap_err().to_string();
        assert!(e.contains(&bad.display().to_string()), "{e}");
        assert!(e.contains("invalid JSON") && e.contains("line 1"), "{e}");

        std::fs::write(&bad, [0x1f, 0x8b, 0, 1, 2]).unwrap();
        let e = Catalog::from_file(&bad).unwrap_err().to_string();
        assert!(e.contains("invalid gzip data"), "{e}");

        std::fs::write(
            &bad,
            r#"{"instanceTypes": [{"name": "x", "capacity": {"cpu": "1", "memory": "1Gi"},
                "offerings": [{"zone": "z", "capacityType": "spot"}]}]}"#,
        )
        .unwrap();
        let e = Catalog::from_file(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "catalog file {}: instance type \"x\": offering z/spot: price is missing \
                 (expected USD per hour)",
                bad.display()
            )
        );
        std::fs::remove_file(bad).unwrap();
    }

    #[test]
    fn example_custom_catalog_loads() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/catalog-custom.json");
        let catalog = Catalog::from_file(path).unwrap();
        assert!(!catalog.instance_types.is_empty());
        assert!(
            catalog
                .instance_types
                .iter()
                .all(|it| it.labels.contains_key(labels::INSTANCE_TYPE))
        );
    }
}
