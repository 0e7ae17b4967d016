//! Purser: a cost-aware node provisioner for Kubernetes.
//!
//! The engine is pure: a cluster snapshot (pods, nodes, NodePools, catalog, budgets) flows
//! into the planner and a plan flows out. Kubernetes and cloud I/O live at the edges.

pub mod api;
pub mod bench;
pub mod catalog;
pub mod cli;
pub mod controllers;
pub mod cost;
pub mod disruption;
pub mod model;
pub mod sim;
pub mod solver;
pub mod webhook;
