//! The controller against the in-process API server (each test a scenario of scenarios.rs).

mod harness;
mod scenarios;
mod scheduler;

use std::time::Duration;

use harness::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_pending_pods_become_kwok_nodes_at_the_plans_cost_and_the_same_pods_again_launch_nothing() {
    scenarios::fifty_pending_pods_become_kwok_nodes_at_the_plans_cost_and_the_same_pods_again_launch_nothing(
        Cluster::start(Duration::from_millis(300)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_claim_created_and_instance_launched_leaves_no_duplicate() {
    scenarios::a_crash_between_claim_created_and_instance_launched_leaves_no_duplicate(
        Cluster::start(Duration::from_millis(300)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_instance_launched_and_node_registered_leaves_no_duplicate() {
    scenarios::a_crash_between_instance_launched_and_node_registered_leaves_no_duplicate(
        Cluster::start(Duration::from_millis(300)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_acts_and_the_other_takes_over_when_it_dies() {
    scenarios::two_replicas_one_acts_and_the_other_takes_over_when_it_dies(
        Cluster::start(Duration::from_millis(200)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_that_binds_leaves_pods_pending_with_an_event_naming_it() {
    scenarios::a_budget_that_binds_leaves_pods_pending_with_an_event_naming_it(
        Cluster::start(Duration::from_millis(200)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_objects_get_a_condition_and_an_event_while_the_rest_is_served() {
    scenarios::bad_objects_get_a_condition_and_an_event_while_the_rest_is_served(
        Cluster::start(Duration::from_millis(200)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_is_survived_without_duplicate_launches() {
    scenarios::an_unreachable_api_server_is_survived_without_duplicate_launches(
        Cluster::start(Duration::from_millis(200)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_node_is_removed_after_its_ttl() {
    scenarios::an_empty_node_is_removed_after_its_ttl(Cluster::start(Duration::from_millis(200)).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consolidation_replaces_three_underused_nodes_launching_first_and_a_pdb_holds_a_fourth() {
    scenarios::consolidation_replaces_three_underused_nodes_launching_first_and_a_pdb_holds_a_fourth(
        Cluster::start(Duration::from_millis(200)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offering_without_capacity_is_marked_unavailable_and_the_next_plan_avoids_it() {
    scenarios::an_offering_without_capacity_is_marked_unavailable_and_the_next_plan_avoids_it(
        Cluster::start(Duration::from_millis(200)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_register_in_time_is_terminated_and_replaced() {
    scenarios::a_node_that_does_not_register_in_time_is_terminated_and_replaced(
        Cluster::start(Duration::from_millis(200)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_instance_is_terminated_after_the_grace_period_and_claimed_ones_are_kept() {
    scenarios::a_leaked_instance_is_terminated_after_the_grace_period_and_claimed_ones_are_kept(
        Cluster::start(Duration::from_millis(200)).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_period_loses_no_budget_spend() {
    scenarios::a_restart_mid_period_loses_no_budget_spend(Cluster::start(Duration::from_millis(200)).await).await;
}
