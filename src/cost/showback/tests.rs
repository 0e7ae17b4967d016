use super::*;

const H: i64 = 1_796_601_600; // 2026-12-07T00:00:00Z

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn window() -> Window {
    Window::new(at("2026-12-07T00:00:00Z"), at("2026-12-07T02:00:00Z")).unwrap()
}

fn node(hour: i64, name: &str, pool: &str, capacity: &str, usd: f64, gpus: f64) -> NodeHour {
    NodeHour {
        hour,
        node: name.into(),
        nodepool: pool.into(),
        instance_type: "g5.12xlarge".into(),
        capacity_type: capacity.into(),
        region: "us-east-1".into(),
        zone: "us-east-1a".into(),
        provider_id: format!("aws:///us-east-1a/i-{name}"),
        hours: 1.0,
        usd,
        gpu_hours: gpus,
    }
}

fn alloc(hour: i64, node: &str, namespace: &str, team: &str, usd: f64, gpus: f64) -> AllocationHour {
    AllocationHour {
        hour,
        node: node.into(),
        namespace: namespace.into(),
        team: team.into(),
        cost_centre: String::new(),
        usd,
        gpu_hours: gpus,
    }
}

/// Two hours: a spot GPU node (4 GPUs, 8 USD/h) shared by two teams, an on-demand CPU node
/// (1 USD/h) half used in hour one and empty in hour two.
fn usage() -> Usage {
    Usage {
        nodes: vec![
            node(H, "gpu", "train", "spot", 8.0, 4.0),
            node(H, "cpu", "general", "on-demand", 1.0, 0.0),
            node(H + 3600, "gpu", "train", "spot", 8.0, 4.0),
            node(H + 3600, "cpu", "general", "on-demand", 1.0, 0.0),
        ],
        allocations: vec![
            alloc(H, "gpu", "vision", "vision", 4.0, 2.0),
            alloc(H, "gpu", "web", "", 2.0, 0.0),
            alloc(H, "cpu", "web", "", 0.5, 0.0),
            alloc(H + 3600, "gpu", "vision", "vision", 6.0, 3.0),
        ],
    }
}

fn row<'a>(card: &'a Scorecard, group: &str) -> &'a GroupRow {
    card.rows
        .iter()
        .find(|r| r.group == group)
        .unwrap_or_else(|| panic!("no row {group}: {card:?}"))
}

#[test]
fn the_groups_add_up_to_what_the_nodes_cost() {
    for by in [
        GroupBy::Namespace,
        GroupBy::Team,
        GroupBy::CostCentre,
        GroupBy::NodePool,
    ] {
        let card = scorecard(by, window(), &usage(), &Usage::default(), vec![]);
        assert!((card.total.spend - 18.0).abs() < 1e-9, "{by:?}: {card:?}");
        assert!((card.node_cost - 18.0).abs() < 1e-9);
    }
}

#[test]
fn idle_is_shared_by_allocated_cost_on_each_node_and_an_empty_node_is_its_own_row() {
    let card = scorecard(GroupBy::Namespace, window(), &usage(), &Usage::default(), vec![]);
    // Hour one, gpu: 2 USD idle shared 4:2; cpu: 0.5 idle to web. Hour two, gpu: 2 idle to vision.
    let vision = row(&card, "vision");
    assert!(
        (vision.spend - (4.0 + 2.0 * 4.0 / 6.0 + 8.0)).abs() < 1e-9,
        "{vision:?}"
    );
    assert!((vision.idle - (2.0 * 4.0 / 6.0 + 2.0)).abs() < 1e-9);
    let web = row(&card, "web");
    assert!((web.spend - (2.0 + 2.0 * 2.0 / 6.0 + 1.0)).abs() < 1e-9, "{web:?}");
    assert!((web.waste_pct() - 100.0 * (2.0 / 3.0 + 0.5) / web.spend).abs() < 1e-9);
    let idle = row(&card, IDLE_ROW);
    assert_eq!((idle.spend, idle.idle), (1.0, 1.0));
    assert_eq!(card.rows[0].group, "vision", "highest spend first");
    let team = scorecard(GroupBy::Team, window(), &usage(), &Usage::default(), vec![]);
    assert!(team.rows.iter().any(|r| r.group == UNLABELLED));
}

#[test]
fn gpu_allocation_and_spot_share() {
    let card = scorecard(GroupBy::Namespace, window(), &usage(), &Usage::default(), vec![]);
    let vision = row(&card, "vision");
    // Paid GPU-hours: 4 × (4 + 4/3) / 8 in hour one, 4 in hour two; requested 5.
    let paid = 4.0 * (4.0 + 4.0 / 3.0) / 8.0 + 4.0;
    assert!((vision.gpu_allocation_pct().unwrap() - 100.0 * 5.0 / paid).abs() < 1e-9);
    assert_eq!(vision.spot_share_pct(), 100.0);
    let web = row(&card, "web");
    assert!((web.spot_share_pct() - 100.0 * (2.0 + 2.0 / 3.0) / web.spend).abs() < 1e-9);
    assert_eq!(row(&card, IDLE_ROW).gpu_allocation_pct(), None);
    assert!((card.total.gpu_allocation_pct().unwrap() - 100.0 * 5.0 / 8.0).abs() < 1e-9);
    let pools = scorecard(GroupBy::NodePool, window(), &usage(), &Usage::default(), vec![]);
    let train = row(&pools, "train");
    assert_eq!((train.spend, train.idle), (16.0, 4.0));
    assert!((train.gpu_allocation_pct().unwrap() - 62.5).abs() < 1e-9);
    assert_eq!(row(&pools, "general").spot_share_pct(), 0.0);
}

#[test]
fn allocations_over_the_node_cost_are_scaled_to_it() {
    let usage = Usage {
        nodes: vec![node(H, "cpu", "general", "on-demand", 1.0, 0.0)],
        allocations: vec![alloc(H, "cpu", "a", "", 0.8, 0.0), alloc(H, "cpu", "b", "", 0.4, 0.0)],
    };
    let card = scorecard(GroupBy::Namespace, window(), &usage, &Usage::default(), vec![]);
    assert!((card.total.spend - 1.0).abs() < 1e-9);
    assert!((row(&card, "a").spend - 2.0 / 3.0).abs() < 1e-9);
}

#[test]
fn the_top_five_changes_by_absolute_spend() {
    let mk = |spends: &[(&str, f64)]| Usage {
        nodes: vec![],
        allocations: spends
            .iter()
            .map(|(ns, usd)| alloc(H, "n", ns, "", *usd, 0.0))
            .collect(),
    };
    let previous = mk(&[
        ("a", 10.0),
        ("b", 5.0),
        ("c", 1.0),
        ("d", 3.0),
        ("e", 2.0),
        ("f", 7.0),
        ("same", 4.0),
    ]);
    let current = mk(&[
        ("a", 4.0),
        ("b", 6.0),
        ("c", 9.0),
        ("d", 3.5),
        ("new", 2.5),
        ("f", 7.2),
        ("same", 4.0),
    ]);
    let card = scorecard(GroupBy::Namespace, window(), &current, &previous, vec![]);
    let names: Vec<(&str, f64)> = card.changes.iter().map(|c| (c.group.as_str(), c.delta())).collect();
    let expected = [("c", 8.0), ("a", -6.0), ("new", 2.5), ("e", -2.0), ("b", 1.0)];
    assert_eq!(names.len(), 5, "{names:?}");
    for ((g, d), (eg, ed)) in names.iter().zip(expected) {
        assert_eq!(*g, eg);
        assert!((d - ed).abs() < 1e-9);
    }
}

#[test]
fn bad_groupings_and_windows_say_what_is_expected() {
    let err = "pod".parse::<GroupBy>().unwrap_err();
    assert!(
        err.contains("expected namespace, team, cost-centre or nodepool"),
        "{err}"
    );
    assert_eq!("cost-centre".parse::<GroupBy>(), Ok(GroupBy::CostCentre));
    let err = Window::new(at("2026-12-07T02:00:00Z"), at("2026-12-07T01:00:00Z")).unwrap_err();
    assert!(err.contains("expected --end after --start"), "{err}");
    assert_eq!(window().previous().start, at("2026-12-06T22:00:00Z"));
}

#[test]
fn budget_standing_follows_the_controllers_rules() {
    let mut b = BudgetStatus {
        name: "team-vision".into(),
        spend: 100.0,
        period_cap: Some(1000.0),
        forecast: 700.0,
        run_rate: 1.0,
        hourly_cap: 5.0,
    };
    assert_eq!(b.standing(), "Within");
    b.forecast = 800.0;
    assert_eq!(b.standing(), "Warning");
    b.run_rate = 6.0;
    assert_eq!(b.standing(), "Exceeded");
}

#[test]
fn csv_table_and_markdown_carry_the_same_rows() {
    let budgets = vec![BudgetStatus {
        name: "vision".into(),
        spend: 12.0,
        period_cap: Some(100.0),
        forecast: 90.0,
        run_rate: 8.0,
        hourly_cap: 10.0,
    }];
    let card = scorecard(GroupBy::Namespace, window(), &usage(), &Usage::default(), budgets);
    let csv = render::csv(&card);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], render::CSV_HEADER);
    assert_eq!(lines.len(), 1 + 3 + 1, "{csv}");
    assert!(lines[1].starts_with("vision,13.333333,3.333333,25.00,"), "{csv}");
    assert!(lines[4].starts_with("(total),18.000000,"), "{csv}");
    let table = render::table(&card);
    assert!(
        table.contains("Showback by namespace from 2026-12-07T00:00:00+00:00"),
        "{table}"
    );
    assert!(table.contains("the rows add up to 18.0000 USD"), "{table}");
    assert!(table.contains("Warning"), "{table}");
    let md = render::markdown(&card);
    assert!(md.starts_with("## Showback by namespace"), "{md}");
    assert!(md.contains("| vision | 13.3333 |"), "{md}");
    assert!(md.contains("|---|---:|"), "{md}");
    assert_eq!(render::csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
}

#[test]
fn focus_rows_have_the_mandatory_columns_and_values() {
    let usage = usage();
    let text = focus::csv(&usage.nodes, &window(), "123456789012");
    let mut rows = text.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    for column in [
        "BilledCost",
        "EffectiveCost",
        "ListCost",
        "ResourceId",
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "ChargeCategory",
        "PricingCategory",
        "ServiceName",
        "RegionId",
        "AvailabilityZone",
        "Tags",
        "BillingAccountId",
        "BillingCurrency",
        "BillingPeriodStart",
        "ServiceCategory",
    ] {
        assert!(header.contains(&column), "{column} missing");
    }
    let records: Vec<Vec<(&str, String)>> = usage.nodes.iter().map(|n| focus::row(n, &window(), "acct")).collect();
    let get = |r: &Vec<(&str, String)>, k: &str| r.iter().find(|(c, _)| *c == k).map(|(_, v)| v.clone()).unwrap();
    let gpu = &records[0];
    assert_eq!(get(gpu, "PricingCategory"), "Dynamic");
    assert_eq!(get(&records[1], "PricingCategory"), "Standard");
    assert_eq!(get(gpu, "ChargePeriodStart"), "2026-12-07T00:00:00Z");
    assert_eq!(get(gpu, "ChargePeriodEnd"), "2026-12-07T01:00:00Z");
    assert_eq!(get(gpu, "BillingPeriodStart"), "2026-12-01T00:00:00Z");
    assert_eq!(get(gpu, "BillingPeriodEnd"), "2027-01-01T00:00:00Z");
    assert_eq!(get(gpu, "ResourceId"), "aws:///us-east-1a/i-gpu");
    assert_eq!(get(gpu, "ProviderName"), "AWS");
    assert_eq!(get(gpu, "AvailabilityZone"), "us-east-1a");
    assert_eq!(get(gpu, "BilledCost").parse::<f64>().unwrap(), 8.0);
    let tags: serde_json::Value = serde_json::from_str(&get(gpu, "Tags")).unwrap();
    assert_eq!(tags["capacity-type"], "spot");
    assert_eq!(tags["nodepool"], "train");
    assert_eq!(text.lines().count(), 5);
    let line = text.lines().nth(1).unwrap();
    assert!(
        line.contains("\"{\"\"nodepool\"\"") || line.contains("{\"\""),
        "Tags are quoted: {line}"
    );
    let half = Window::new(at("2026-12-07T00:30:00Z"), at("2026-12-07T02:00:00Z")).unwrap();
    assert_eq!(
        get(&focus::row(&usage.nodes[0], &half, "a"), "ChargePeriodStart"),
        "2026-12-07T00:30:00Z"
    );
}
