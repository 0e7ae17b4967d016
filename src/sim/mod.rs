//! `purser simulate`: a discrete-time simulation of a cluster and a cloud that drives the real
//! planner and disruption engine, and compares autoscaling policies on the same arrivals.

pub mod result;
pub mod scenario;
