//! The per-instance host state (`T` of `Store<T>`) and its WASI views.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{CallHook, ResourceLimiter, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::key_value::host::KeyValueCtx;
use crate::mqtt::MqttCtx;
use crate::outbound::OutboundHooks;
use crate::outbound_redis::RedisCtx;
use crate::sqlite::SqliteCtx;
use crate::telemetry::Telemetry;
use crate::telemetry::metrics::InstanceUsage;
use crate::variables::host::VariablesCtx;

/// Everything one component instance may touch, built fresh per request.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: OutboundHooks,
    pub(crate) key_value: KeyValueCtx,
    pub(crate) variables: VariablesCtx,
    pub(crate) sqlite: SqliteCtx,
    pub(crate) redis: RedisCtx,
    pub(crate) mqtt: MqttCtx,
    pub(crate) limits: InstanceLimits,
    /// What the instance used, for Spin's per-instance metrics (only when
    /// metrics are exported).
    pub(crate) usage: Option<Usage>,
}

impl Drop for HostState {
    fn drop(&mut self) {
        if let Some(usage) = self.usage.take() {
            usage.record(self.limits.memory_consumed());
        }
    }
}

/// wasmtime's [`StoreLimits`], counting the linear memory grown as Spin's
/// `StoreLimitsAsync` does (`crates/core/src/limits.rs`).
pub struct InstanceLimits {
    limits: StoreLimits,
    memory_consumed: u64,
}

impl InstanceLimits {
    /// `limits`, with nothing grown yet.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            memory_consumed: 0,
        }
    }

    /// Bytes of linear memory grown so far.
    pub fn memory_consumed(&self) -> u64 {
        self.memory_consumed
    }
}

impl ResourceLimiter for InstanceLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grows = self.limits.memory_growing(current, desired, maximum)?;
        if grows {
            self.memory_consumed =
                (self.memory_consumed as i64 + (desired as i64 - current as i64)).max(0) as u64;
        }
        Ok(grows)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// One instance's consumption (Spin's `InstanceState` fields).
pub struct Usage {
    telemetry: Arc<Telemetry>,
    component_id: String,
    /// Memory grown by instantiation.
    pub(crate) memory_on_init: u64,
    cpu_time: Duration,
    entered: Option<Instant>,
}

impl Usage {
    /// Nothing used yet by an instance of `component_id`.
    pub fn new(telemetry: Arc<Telemetry>, component_id: String) -> Self {
        Self {
            telemetry,
            component_id,
            memory_on_init: 0,
            cpu_time: Duration::ZERO,
            entered: None,
        }
    }

    /// Spin's `CpuTimeCallHook`: time from entering guest code to leaving it.
    pub fn hook(&mut self, hook: CallHook) {
        match hook {
            CallHook::CallingWasm | CallHook::ReturningFromHost => {
                self.entered = Some(Instant::now());
            }
            CallHook::ReturningFromWasm | CallHook::CallingHost => {
                if let Some(entered) = self.entered.take() {
                    self.cpu_time += entered.elapsed();
                }
            }
        }
    }

    fn record(self, memory: u64) {
        if let Some(metrics) = self.telemetry.metrics() {
            metrics.instance(
                &self.component_id,
                InstanceUsage {
                    memory_on_init: self.memory_on_init,
                    memory,
                    cpu_time: self.cpu_time,
                },
            );
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
