//! The metrics Spin records (spinframework/spin v4.0.2), under the scope its
//! tracing bridge gives them (`tracing/tracing-opentelemetry`):
//! - `spin.request_count`, a monotonic counter per request a trigger runs
//!   (chained ones included), with `trigger_type`, `app_id`, `component_id`
//!   (`crates/trigger-http/src/server.rs` `handle_trigger_route`);
//! - per component instance, when it is dropped
//!   (`crates/factors-executor/src/lib.rs`, `InstanceState::drop`):
//!   `spin.component_memory_used_on_init` and `spin.component_memory_used`
//!   (bytes of linear memory grown, histograms), `spin.component_cpu_time`
//!   (seconds spent in guest code, a histogram); each with `component_id`
//!   and a `unit` attribute (Spin's macros pass the unit as an attribute).

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, MeterProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

use super::ExportClient;

/// The instruments, and the provider that exports them.
pub struct Metrics {
    provider: SdkMeterProvider,
    request_count: Counter<u64>,
    memory_used_on_init: Histogram<u64>,
    memory_used: Histogram<u64>,
    cpu_time: Histogram<f64>,
}

/// What one instance consumed, recorded when it ends.
#[derive(Debug, Default, Clone, Copy)]
pub struct InstanceUsage {
    /// Linear memory grown by instantiation, bytes.
    pub memory_on_init: u64,
    /// Linear memory grown by the end, bytes.
    pub memory: u64,
    /// Time in guest code.
    pub cpu_time: Duration,
}

impl Metrics {
    /// The instruments on a periodic OTLP/HTTP export (interval from
    /// `OTEL_METRIC_EXPORT_INTERVAL`, 60 s by default, as the SDK reads it).
    pub fn new(
        resource: opentelemetry_sdk::Resource,
        client: ExportClient,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let exporter = opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_http_client(client)
            .with_timeout(timeout)
            .build()?;
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter).build())
            .with_resource(resource)
            .build();
        let meter = provider.meter_with_scope(
            opentelemetry::InstrumentationScope::builder("tracing/tracing-opentelemetry")
                .with_version("0.29.0")
                .build(),
        );
        Ok(Self {
            request_count: meter.u64_counter("spin.request_count").build(),
            memory_used_on_init: meter
                .u64_histogram("spin.component_memory_used_on_init")
                .build(),
            memory_used: meter.u64_histogram("spin.component_memory_used").build(),
            cpu_time: meter.f64_histogram("spin.component_cpu_time").build(),
            provider,
        })
    }

    /// One request run by the HTTP trigger in component `component_id` of
    /// app `app_id`.
    pub fn request(&self, app_id: &str, component_id: &str) {
        self.request_count.add(
            1,
            &[
                KeyValue::new("trigger_type", "http"),
                KeyValue::new("app_id", app_id.to_string()),
                KeyValue::new("component_id", component_id.to_string()),
            ],
        );
    }

    /// An instance of `component_id` ended having used `usage`.
    pub fn instance(&self, component_id: &str, usage: InstanceUsage) {
        let id = KeyValue::new("component_id", component_id.to_string());
        self.cpu_time.record(
            usage.cpu_time.as_secs_f64(),
            &[id.clone(), KeyValue::new("unit", "s")],
        );
        let bytes = [id, KeyValue::new("unit", "By")];
        self.memory_used_on_init
            .record(usage.memory_on_init, &bytes);
        self.memory_used.record(usage.memory, &bytes);
    }

    /// Exports what is left, within `timeout`.
    pub fn shutdown(&self, timeout: Duration) {
        let _ = self.provider.shutdown_with_timeout(timeout);
    }
}
