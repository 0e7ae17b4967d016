//! The Pricing API client against a recorded `GetProducts` response shape served on 127.0.0.1
//! (moto has no Pricing service): pagination, a malformed price, throttling, and the live
//! catalog built from moto's EC2 with these prices (and the snapshot when the APIs fail).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use purser_aws::testing::{self, CapacityInjector, Moto};
use purser_aws::{AwsOptions, AwsProvider, Clients, pricing};
use purser_cloudprovider::CloudProvider;
use serde_json::{Value, json};

/// A price list entry as the Pricing API returns it (trimmed to the fields used).
fn entry(instance_type: &str, usd: &str) -> String {
    json!({
        "product": {"productFamily": "Compute Instance", "attributes": {
            "instanceType": instance_type, "operatingSystem": "Linux", "tenancy": "Shared",
            "regionCode": "us-east-1", "preInstalledSw": "NA", "capacitystatus": "Used"},
            "sku": "SKU1"},
        "serviceCode": "AmazonEC2",
        "terms": {"OnDemand": {"SKU1.JRTCKXETXF": {"priceDimensions": {"SKU1.JRTCKXETXF.6YS6EN2CT7": {
            "unit": "Hrs", "description": "On Demand Linux", "pricePerUnit": {"USD": usd}}},
            "sku": "SKU1", "effectiveDate": "2026-11-01T00:00:00Z"}}},
        "version": "20261101", "publicationDate": "2026-11-01T00:00:00Z"
    })
    .to_string()
}

#[derive(Default)]
struct Seen {
    requests: Vec<Value>,
    throttled: bool,
}

async fn get_products(
    axum::extract::State(seen): axum::extract::State<Arc<Mutex<Seen>>>,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let json_type = [("content-type", "application/x-amz-json-1.1")];
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let request: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut seen = seen.lock().expect("lock");
    if !seen.throttled {
        seen.throttled = true;
        let error = json!({"__type": "ThrottlingException", "message": "Rate exceeded"}).to_string();
        return (StatusCode::BAD_REQUEST, json_type, error);
    }
    seen.requests.push(request.clone());
    if target != "AWSPriceListService.GetProducts" {
        return (
            StatusCode::BAD_REQUEST,
            json_type,
            json!({"__type": "UnknownOperation"}).to_string(),
        );
    }
    let page = match request["NextToken"].as_str() {
        None => json!({"FormatVersion": "aws_v1", "NextToken": "page-2",
            "PriceList": [entry("m5.large", "0.5000000000"), entry("c5.large", "not-a-price")]}),
        Some("page-2") => json!({"FormatVersion": "aws_v1", "PriceList": [entry("m5.xlarge", "1.0000000000")]}),
        Some(other) => {
            return (
                StatusCode::BAD_REQUEST,
                json_type,
                json!({"__type": "InvalidNextTokenException", "message": other}).to_string(),
            );
        }
    };
    (StatusCode::OK, json_type, page.to_string())
}

/// Serve the fake Pricing API on 127.0.0.1; returns its URL and what it saw.
async fn pricing_server() -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let app = Router::new().route("/", post(get_products)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_prices_follow_every_page_skip_a_malformed_price_and_survive_throttling() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (url, seen) = pricing_server().await;
        let sdk = testing::test_sdk_config(&url).await;
        let clients = Clients::new(&sdk, Some(&url));
        let (prices, skipped) = pricing::on_demand_prices(&clients.pricing, &common::fast_retry(), "us-east-1")
            .await
            .expect("prices");
        assert_eq!(prices.len(), 2, "{prices:?}");
        assert_eq!(prices["m5.large"], 0.5);
        assert_eq!(prices["m5.xlarge"], 1.0);
        assert_eq!(skipped, 1, "the malformed c5.large price is skipped");
        let seen = seen.lock().expect("lock");
        assert!(seen.throttled);
        assert_eq!(seen.requests.len(), 2, "two pages after one throttled attempt");
        let filters = seen.requests[0]["Filters"].as_array().expect("filters").clone();
        for (field, value) in [
            ("operatingSystem", "Linux"),
            ("tenancy", "Shared"),
            ("regionCode", "us-east-1"),
            ("capacitystatus", "Used"),
        ] {
            assert!(
                filters
                    .iter()
                    .any(|f| f["Field"] == field && f["Value"] == value && f["Type"] == "TERM_MATCH"),
                "filter {field}={value} in {filters:?}"
            );
        }
        assert_eq!(seen.requests[0]["ServiceCode"], "AmazonEC2");
    })
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_catalog_has_moto_zones_and_api_prices_and_the_snapshot_serves_when_the_apis_fail() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let (url, _) = pricing_server().await;
        let moto = Moto::start();
        let sdk = moto.sdk_config().await;
        let options = AwsOptions {
            cluster_name: common::CLUSTER.into(),
            retry: common::fast_retry(),
            ..AwsOptions::default()
        };
        let live = AwsProvider::new(
            testing::clients(&sdk, &CapacityInjector::default(), Some(&url)),
            options.clone(),
            None,
            common::snapshot(),
        );
        live.refresh_catalog().await;
        let catalog = live.instance_types().await.expect("catalog");
        let m5 = catalog
            .instance_types
            .iter()
            .find(|t| t.name == "m5.large")
            .expect("m5.large");
        let od: Vec<_> = m5.offerings.iter().filter(|o| o.capacity_type == "on-demand").collect();
        assert!(od.len() >= 3, "moto offers m5.large in several zones: {od:?}");
        assert!(
            od.iter().all(|o| o.price == Some(0.5)),
            "the Pricing API's price: {od:?}"
        );
        assert!(
            m5.offerings
                .iter()
                .any(|o| o.capacity_type == "spot" && !o.price_estimated),
            "spot prices from the history"
        );
        let c5 = catalog
            .instance_types
            .iter()
            .find(|t| t.name == "c5.large")
            .expect("c5.large");
        assert!(
            c5.offerings
                .iter()
                .filter(|o| o.capacity_type == "on-demand")
                .all(|o| o.price == Some(0.085)),
            "malformed price: the snapshot's"
        );
        assert!(
            catalog.instance_types.len() > 100,
            "types the snapshot lacks come from DescribeInstanceTypes"
        );

        let dead = format!("http://127.0.0.1:{}", testing::free_port());
        let down_sdk = testing::test_sdk_config(&dead).await;
        let down = AwsProvider::new(Clients::new(&down_sdk, Some(&dead)), options, None, common::snapshot());
        down.refresh_catalog().await;
        assert_eq!(down.instance_types().await.expect("catalog"), common::snapshot());
    })
    .await
    .expect("in time");
}
