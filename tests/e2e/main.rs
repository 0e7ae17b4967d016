//! The controller scenarios of tests/controller against a real cluster: set `PURSER_E2E=1` and
//! point KUBECONFIG at a kind or k3d cluster with kwok installed (docs/e2e.md). Without
//! `PURSER_E2E=1` every test returns at once.

#[path = "../controller/harness.rs"]
mod harness;
#[path = "../controller/scenarios.rs"]
mod scenarios;
#[path = "../controller/scheduler.rs"]
#[allow(dead_code)]
mod scheduler;

use harness::Cluster;

fn enabled() -> bool {
    std::env::var("PURSER_E2E").is_ok_and(|v| v == "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_pending_pods_become_kwok_nodes_at_the_plans_cost_and_the_same_pods_again_launch_nothing() {
    if enabled() {
        scenarios::fifty_pending_pods_become_kwok_nodes_at_the_plans_cost_and_the_same_pods_again_launch_nothing(
            Cluster::from_kubeconfig().await,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_claim_created_and_instance_launched_leaves_no_duplicate() {
    if enabled() {
        scenarios::a_crash_between_claim_created_and_instance_launched_leaves_no_duplicate(
            Cluster::from_kubeconfig().await,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_instance_launched_and_node_registered_leaves_no_duplicate() {
    if enabled() {
        scenarios::a_crash_between_instance_launched_and_node_registered_leaves_no_duplicate(
            Cluster::from_kubeconfig().await,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_one_acts_and_the_other_takes_over_when_it_dies() {
    if enabled() {
        scenarios::two_replicas_one_acts_and_the_other_takes_over_when_it_dies(Cluster::from_kubeconfig().await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_that_binds_leaves_pods_pending_with_an_event_naming_it() {
    if enabled() {
        scenarios::a_budget_that_binds_leaves_pods_pending_with_an_event_naming_it(Cluster::from_kubeconfig().await)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_objects_get_a_condition_and_an_event_while_the_rest_is_served() {
    if enabled() {
        scenarios::bad_objects_get_a_condition_and_an_event_while_the_rest_is_served(Cluster::from_kubeconfig().await)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_server_is_survived_without_duplicate_launches() {
    if enabled() {
        scenarios::an_unreachable_api_server_is_survived_without_duplicate_launches(Cluster::from_kubeconfig().await)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_node_is_removed_after_its_ttl() {
    if enabled() {
        scenarios::an_empty_node_is_removed_after_its_ttl(Cluster::from_kubeconfig().await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consolidation_replaces_three_underused_nodes_launching_first_and_a_pdb_holds_a_fourth() {
    if enabled() {
        scenarios::consolidation_replaces_three_underused_nodes_launching_first_and_a_pdb_holds_a_fourth(
            Cluster::from_kubeconfig().await,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offering_without_capacity_is_marked_unavailable_and_the_next_plan_avoids_it() {
    if enabled() {
        scenarios::an_offering_without_capacity_is_marked_unavailable_and_the_next_plan_avoids_it(
            Cluster::from_kubeconfig().await,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_does_not_register_in_time_is_terminated_and_replaced() {
    if enabled() {
        scenarios::a_node_that_does_not_register_in_time_is_terminated_and_replaced(Cluster::from_kubeconfig().await)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaked_instance_is_terminated_after_the_grace_period_and_claimed_ones_are_kept() {
    if enabled() {
        scenarios::a_leaked_instance_is_terminated_after_the_grace_period_and_claimed_ones_are_kept(
            Cluster::from_kubeconfig().await,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_period_loses_no_budget_spend() {
    if enabled() {
        scenarios::a_restart_mid_period_loses_no_budget_spend(Cluster::from_kubeconfig().await).await;
    }
}
