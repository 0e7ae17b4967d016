//! The cluster model: quantities, resources, labels, pods, nodes and the snapshot the engine plans from.

pub mod daemonset;
pub mod disruption;
pub mod error;
pub mod labels;
pub mod load;
pub mod pod;
pub mod quantity;
pub mod requirements;
pub mod resources;
pub mod snapshot;
pub mod taints;

pub use error::ModelError;
pub use snapshot::{Budget, DaemonSetInfo, NodeInfo, Pool, Snapshot};
