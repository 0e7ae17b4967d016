//! On-demand prices from the AWS Pricing API (`GetProducts`), with the filters Karpenter uses:
//! shared-tenancy Linux compute instances without pre-installed software, in one region.
//!
//! In: the region. Out: USD per hour by instance type. A price list entry that does not parse is
//! logged and skipped; the other entries still count.

use std::collections::BTreeMap;

use aws_sdk_pricing::types::{Filter, FilterType};
use serde_json::Value;

use crate::errors::{AwsError, RetryPolicy, call};

/// The `GetProducts` filters for on-demand Linux prices in `region`.
pub fn filters(region: &str) -> Vec<Filter> {
    [
        ("tenancy", "Shared"),
        ("productFamily", "Compute Instance"),
        ("serviceCode", "AmazonEC2"),
        ("preInstalledSw", "NA"),
        ("operatingSystem", "Linux"),
        ("capacitystatus", "Used"),
        ("marketoption", "OnDemand"),
        ("regionCode", region),
    ]
    .iter()
    .filter_map(|(field, value)| {
        Filter::builder()
            .r#type(FilterType::TermMatch)
            .field(*field)
            .value(*value)
            .build()
            .ok()
    })
    .collect()
}

/// On-demand prices of every instance type in `region` (all pages); also the number of
/// entries skipped because they did not parse.
pub async fn on_demand_prices(
    client: &aws_sdk_pricing::Client,
    retry: &RetryPolicy,
    region: &str,
) -> Result<(BTreeMap<String, f64>, usize), AwsError> {
    let mut prices = BTreeMap::new();
    let mut skipped = 0;
    let mut token: Option<String> = None;
    loop {
        let page = call("GetProducts", retry, || {
            client
                .get_products()
                .service_code("AmazonEC2")
                .format_version("aws_v1")
                .set_filters(Some(filters(region)))
                .set_next_token(token.clone())
                .send()
        })
        .await?;
        for entry in page.price_list() {
            match parse_entry(entry) {
                Ok((name, price)) => {
                    prices.insert(name, price);
                }
                Err(problem) => {
                    skipped += 1;
                    tracing::warn!(%problem, "skipping a Pricing API entry");
                }
            }
        }
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok((prices, skipped));
        }
    }
}

/// One price list entry (a JSON document) → (instance type, USD per hour).
pub fn parse_entry(entry: &str) -> Result<(String, f64), String> {
    let doc: Value = serde_json::from_str(entry).map_err(|e| format!("not JSON: {e}"))?;
    let name = doc["product"]["attributes"]["instanceType"]
        .as_str()
        .ok_or("no product.attributes.instanceType")?;
    let terms = doc["terms"]["OnDemand"]
        .as_object()
        .ok_or_else(|| format!("{name}: no terms.OnDemand"))?;
    for term in terms.values() {
        let Some(dimensions) = term["priceDimensions"].as_object() else {
            continue;
        };
        for dimension in dimensions.values() {
            let Some(usd) = dimension["pricePerUnit"]["USD"].as_str() else {
                continue;
            };
            let price: f64 = usd
                .parse()
                .map_err(|_| format!("{name}: pricePerUnit.USD {usd:?} is not a number"))?;
            if !price.is_finite() || price <= 0.0 {
                return Err(format!("{name}: pricePerUnit.USD {usd:?} is not a positive price"));
            }
            return Ok((name.to_string(), price));
        }
    }
    Err(format!("{name}: no USD price in terms.OnDemand"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_gives_its_hourly_price_and_a_bad_price_is_an_error() {
        let good = r#"{"product":{"attributes":{"instanceType":"m5.large"}},"terms":{"OnDemand":{"A.B":{"priceDimensions":{"A.B.C":{"unit":"Hrs","pricePerUnit":{"USD":"0.0960000000"}}}}}}}"#;
        assert_eq!(parse_entry(good), Ok(("m5.large".into(), 0.096)));
        let bad = good.replace("0.0960000000", "n/a");
        assert!(
            parse_entry(&bad)
                .unwrap_err()
                .contains("m5.large: pricePerUnit.USD \"n/a\" is not a number")
        );
        assert!(parse_entry("{").is_err());
    }
}
