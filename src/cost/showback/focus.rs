//! FOCUS 1.2 (FinOps Open Cost and Usage Specification) rows: one per node and UTC hour.
//!
//! Pure. In: the node hours of a window and the billing account to name. Out: CSV with the
//! FOCUS 1.2 columns in the specification's (alphabetical) order; columns Purser cannot know
//! (commitment discounts, capacity reservations, invoices) are empty, which FOCUS reads as null.
//!
//! Costs: a node's price is what the cluster pays per hour, so BilledCost, EffectiveCost,
//! ContractedCost and ListCost are all the hour's accrued cost (for spot capacity ListCost is the
//! spot price paid, not the on-demand price, which the metrics do not carry).

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde_json::json;

use super::render::csv_field;
use super::{NodeHour, Window};

/// The FOCUS 1.2 columns, in the specification's order.
pub const COLUMNS: [&str; 57] = [
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "CapacityReservationId",
    "CapacityReservationStatus",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
];

/// The node hours of `window` as FOCUS 1.2 CSV, billed to `account`.
pub fn csv(nodes: &[NodeHour], window: &Window, account: &str) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    let mut sorted: Vec<&NodeHour> = nodes.iter().filter(|n| n.usd > 0.0 || n.hours > 0.0).collect();
    sorted.sort_by(|a, b| a.hour.cmp(&b.hour).then_with(|| a.node.cmp(&b.node)));
    for node in sorted {
        let row = row(node, window, account);
        let fields: Vec<String> = COLUMNS
            .iter()
            .map(|c| csv_field(row.iter().find(|(k, _)| k == c).map_or("", |(_, v)| v.as_str())))
            .collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// The non-empty columns of one node hour.
pub fn row(node: &NodeHour, window: &Window, account: &str) -> Vec<(&'static str, String)> {
    let hour = Utc.timestamp_opt(node.hour, 0).single().unwrap_or(window.start);
    let start = hour.max(window.start);
    let end = (hour + chrono::Duration::hours(1)).min(window.end);
    let (billing_start, billing_end) = month_of(hour);
    let cost = format!("{:.10}", node.usd);
    let price = format!("{:.10}", node.unit_price());
    let hours = format!("{:.10}", node.hours);
    let provider = provider_name(&node.provider_id);
    let pricing = if node.is_spot() { "Dynamic" } else { "Standard" };
    let resource_id = if node.provider_id.is_empty() {
        node.node.clone()
    } else {
        node.provider_id.clone()
    };
    let tags = json!({
        "nodepool": node.nodepool,
        "instance-type": node.instance_type,
        "capacity-type": node.capacity_type,
    })
    .to_string();
    vec![
        ("AvailabilityZone", node.zone.clone()),
        ("BilledCost", cost.clone()),
        ("BillingAccountId", account.to_string()),
        ("BillingAccountName", account.to_string()),
        ("BillingCurrency", "USD".into()),
        ("BillingPeriodEnd", rfc3339(billing_end)),
        ("BillingPeriodStart", rfc3339(billing_start)),
        ("ChargeCategory", "Usage".into()),
        (
            "ChargeDescription",
            format!(
                "{} {} node {} (NodePool {})",
                node.instance_type,
                node.capacity_type,
                node.node,
                if node.nodepool.is_empty() {
                    "none"
                } else {
                    &node.nodepool
                }
            ),
        ),
        ("ChargeFrequency", "Usage-Based".into()),
        ("ChargePeriodEnd", rfc3339(end)),
        ("ChargePeriodStart", rfc3339(start)),
        ("ConsumedQuantity", hours.clone()),
        ("ConsumedUnit", "Hours".into()),
        ("ContractedCost", cost.clone()),
        ("ContractedUnitPrice", price.clone()),
        ("EffectiveCost", cost.clone()),
        ("InvoiceIssuerName", provider.clone()),
        ("ListCost", cost.clone()),
        ("ListUnitPrice", price.clone()),
        ("PricingCategory", pricing.into()),
        ("PricingCurrency", "USD".into()),
        ("PricingCurrencyContractedUnitPrice", price.clone()),
        ("PricingCurrencyEffectiveCost", cost),
        ("PricingCurrencyListUnitPrice", price),
        ("PricingQuantity", hours),
        ("PricingUnit", "Hours".into()),
        ("ProviderName", provider.clone()),
        ("PublisherName", provider),
        ("RegionId", node.region.clone()),
        ("RegionName", node.region.clone()),
        ("ResourceId", resource_id),
        ("ResourceName", node.node.clone()),
        ("ResourceType", "Kubernetes Node".into()),
        ("ServiceCategory", "Compute".into()),
        ("ServiceName", "Kubernetes nodes".into()),
        ("ServiceSubcategory", "Virtual Machines".into()),
        ("SkuId", node.instance_type.clone()),
        (
            "SkuPriceId",
            format!("{}/{}/{}", node.instance_type, node.capacity_type, node.zone),
        ),
        ("Tags", tags),
    ]
}

/// The calendar month (UTC) containing `at`: [start, end).
fn month_of(at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = |y: i32, m: u32| {
        let date = NaiveDate::from_ymd_opt(y, m, 1).unwrap_or_default();
        Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
    };
    let (y, m) = (at.year(), at.month());
    let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (first(y, m), first(next.0, next.1))
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The provider a `spec.providerID` names: `aws:///...` is AWS, `kwok://...` kwok.
fn provider_name(provider_id: &str) -> String {
    match provider_id.split_once("://").map(|(scheme, _)| scheme) {
        Some("aws") => "AWS".into(),
        Some(scheme) if !scheme.is_empty() => scheme.to_string(),
        _ => "Kubernetes".into(),
    }
}
