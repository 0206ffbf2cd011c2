//! Outbound MQTT (`fermyon:spin/mqtt@2.0.0`, world `mqtt-host` in
//! `runner/wit/mqtt.wit`), as Spin 4.0.2's `factor-outbound-mqtt` (the v2
//! `HostConnection` and its `NetworkedMqttClient` on rumqttc):
//!
//! - `open(address, username, password, keep-alive)`: the address must be
//!   allowed by the component's `allowed_outbound_hosts` as an `mqtt://`
//!   destination ([`Permit`]); denied (or not a URL) is
//!   `connection-failed("address <address> is not permitted")`, an
//!   allow-list that cannot be resolved `other(<why>)`; an address rumqttc
//!   does not take (no `client_id` query parameter, another scheme) is
//!   `invalid-address`; past 1024 open connections `too-many-connections`.
//!   Nothing connects yet: like Spin's client, the connection is made by the
//!   first publish;
//! - `publish(topic, payload, qos)` hands the message to the client, then
//!   drives its event loop until the message is out (at-most-once), acked
//!   (at-least-once) or completed (exactly-once); a failure of the
//!   connection is `connection-failed(<rumqttc's error>)`.
//!
//! Each call is Spin's span (`spin_outbound_mqtt.open_connection`, client;
//! `<topic> publish`, producer) under the instance's, failed as Spin's
//! `err(level = INFO)` fails it ([`spans::call_failed`]).
//!
//! edge-runner's client has no TLS: an `mqtts://` address is
//! `invalid-address` here where Spin would try TLS.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS};
use tokio::sync::Mutex;
use wasmtime::component::{HasData, Linker, Resource};

use crate::handles::Table;
use crate::permit::Permit;
use crate::telemetry::{Trace, spans};

#[cfg(test)]
mod tests;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "mqtt-host",
        imports: { default: async | trappable },
        additional_derives: [PartialEq],
    });
}

use bindings::fermyon::spin::mqtt;
/// The generated interface: what the guest sees, and the traits
/// [`MqttCtx`] implements.
pub use mqtt::{Connection, Error, Host, HostConnection, Qos};

/// Connections one instance may hold at once (Spin's table capacity).
pub const MAX_CONNECTIONS: usize = 1024;

/// Spin's `MQTT_CHANNEL_CAP`: requests queued between client and event loop.
const CHANNEL_CAP: usize = 1000;

/// One guest connection: Spin's `NetworkedMqttClient`.
pub struct Client {
    inner: AsyncClient,
    event_loop: Mutex<EventLoop>,
}

impl Client {
    /// A client for `address` (nothing connects until the first publish);
    /// `invalid-address` for an address rumqttc does not take.
    pub fn create(
        address: &str,
        username: String,
        password: String,
        keep_alive: Duration,
    ) -> Result<Self, Error> {
        let mut options = MqttOptions::parse_url(address).map_err(|e| {
            eprintln!("MQTT URL parse error: {e:?}");
            Error::InvalidAddress
        })?;
        options.set_credentials(username, password);
        options.set_keep_alive(keep_alive);
        let (inner, event_loop) = AsyncClient::new(options, CHANNEL_CAP);
        Ok(Self {
            inner,
            event_loop: Mutex::new(event_loop),
        })
    }

    /// Publishes `payload` and drives the connection until `qos` is met.
    pub async fn publish(&self, topic: String, qos: Qos, payload: Vec<u8>) -> Result<(), Error> {
        let qos = match qos {
            Qos::AtMostOnce => QoS::AtMostOnce,
            Qos::AtLeastOnce => QoS::AtLeastOnce,
            Qos::ExactlyOnce => QoS::ExactlyOnce,
        };
        self.inner
            .publish_bytes(topic, qos, false, payload.into())
            .await
            .map_err(|e| Error::Other(e.to_string()))?;
        let mut event_loop = self.event_loop.lock().await;
        loop {
            let event = event_loop
                .poll()
                .await
                .map_err(|e| Error::ConnectionFailed(e.to_string()))?;
            match (qos, event) {
                (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
                | (QoS::AtLeastOnce, Event::Incoming(Incoming::PubAck(_)))
                | (QoS::ExactlyOnce, Event::Incoming(Incoming::PubComp(_))) => return Ok(()),
                _ => continue,
            }
        }
    }
}

/// Per-instance outbound MQTT state: the component's permission and the
/// instance's open connections.
pub struct MqttCtx {
    permit: Permit,
    connections: Table<Arc<Client>>,
    /// The instance's span: each call is an MQTT span under it.
    pub(crate) trace: Trace,
}

impl MqttCtx {
    /// State for one instance of a component with `permit`.
    pub fn new(permit: Permit) -> Self {
        Self {
            permit,
            connections: Table::new(MAX_CONNECTIONS),
            trace: Trace::off(),
        }
    }

    /// Spin's `open`: the permission, then the client.
    fn client(
        &self,
        address: &str,
        username: String,
        password: String,
        keep_alive: Duration,
    ) -> Result<Client, Error> {
        match self.permit.allows(address, "mqtt") {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::ConnectionFailed(format!(
                    "address {address} is not permitted"
                )));
            }
            Err(why) => return Err(Error::Other(why)),
        }
        Client::create(address, username, password, keep_alive)
    }
}

/// The module Spin's MQTT host calls are instrumented in (the `target` of
/// their error events).
const TARGET: &str = "spin_factor_outbound_mqtt::host";

/// `result`, with `span` failed as Spin's `err(level = INFO)` fails it.
fn traced<T>(span: &Trace, result: Result<T, Error>) -> Result<T, Error> {
    spans::traced(span, TARGET, result)
}

/// Adds the outbound MQTT interface to `linker`; `get` finds the
/// instance's [`MqttCtx`] in the store data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut MqttCtx,
) -> anyhow::Result<()> {
    mqtt::add_to_linker::<T, MqttData>(linker, get)
        .map_err(|err| anyhow::Error::from_boxed(err.into_boxed_dyn_error()))
}

struct MqttData;

impl HasData for MqttData {
    type Data<'a> = &'a mut MqttCtx;
}

impl Host for MqttCtx {}

impl HostConnection for MqttCtx {
    async fn open(
        &mut self,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        let span = spans::mqtt_open(
            &self.trace,
            &address,
            &username,
            keep_alive_interval_in_secs,
        );
        let result = self
            .client(
                &address,
                username,
                password,
                Duration::from_secs(keep_alive_interval_in_secs),
            )
            .and_then(|client| {
                self.connections
                    .push(Arc::new(client))
                    .map(Resource::new_own)
                    .ok_or(Error::TooManyConnections)
            });
        Ok(traced(&span, result))
    }

    async fn publish(
        &mut self,
        connection: Resource<Connection>,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
    ) -> wasmtime::Result<Result<(), Error>> {
        let span = spans::mqtt_publish(&self.trace, &topic, &qos);
        let result = match self.connections.get(connection.rep()).cloned() {
            Some(client) => client.publish(topic, qos, payload).await,
            None => Err(Error::Other(
                "could not find connection for resource".into(),
            )),
        };
        Ok(traced(&span, result))
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.connections.remove(connection.rep());
        Ok(())
    }
}
