use super::*;
use crate::permit::test_permit;
use edge_testkit::MosquittoServer;

async fn open(ctx: &mut MqttCtx, address: &str) -> Result<u32, Error> {
    HostConnection::open(
        ctx,
        address.to_string(),
        "user".into(),
        "password".into(),
        30,
    )
    .await
    .unwrap()
    .map(|r| r.rep())
}

async fn publish(
    ctx: &mut MqttCtx,
    rep: u32,
    topic: &str,
    payload: &[u8],
    qos: Qos,
) -> Result<(), Error> {
    HostConnection::publish(
        ctx,
        Resource::new_borrow(rep),
        topic.into(),
        payload.to_vec(),
        qos,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn an_address_outside_allowed_outbound_hosts_is_connection_failed_not_permitted() {
    let mut ctx = MqttCtx::new(test_permit(&["mqtt://broker:1883"], &[]));
    let address = "mqtt://localhost:1883?client_id=spintest";
    assert_eq!(
        open(&mut ctx, address).await,
        Err(Error::ConnectionFailed(format!(
            "address {address} is not permitted"
        )))
    );
    // The scheme's well-known port is assumed on both sides.
    assert!(open(&mut ctx, "mqtt://broker?client_id=a").await.is_ok());
}

#[tokio::test]
async fn an_allow_list_that_cannot_be_resolved_is_other() {
    let mut ctx = MqttCtx::new(test_permit(&["mqtt://{{ broker }}"], &[]));
    let result = open(&mut ctx, "mqtt://localhost?client_id=a").await;
    assert!(
        matches!(result, Err(Error::Other(ref why)) if why.contains("broker")),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_address_without_a_client_id_or_with_another_scheme_is_invalid_address() {
    let mut ctx = MqttCtx::new(test_permit(&["*://*:*"], &[]));
    assert_eq!(
        open(&mut ctx, "mqtt://localhost:1883").await,
        Err(Error::InvalidAddress)
    );
    assert_eq!(
        open(&mut ctx, "http://localhost:1883?client_id=a").await,
        Err(Error::InvalidAddress)
    );
}

#[tokio::test]
async fn open_connects_nothing_and_a_publish_to_no_broker_is_connection_failed() {
    let port = edge_testkit::free_port();
    let mut ctx = MqttCtx::new(test_permit(&["mqtt://127.0.0.1:*"], &[]));
    let c = open(&mut ctx, &format!("mqtt://127.0.0.1:{port}?client_id=a"))
        .await
        .unwrap();
    let result = publish(&mut ctx, c, "t", b"x", Qos::AtMostOnce).await;
    assert!(
        matches!(result, Err(Error::ConnectionFailed(ref why)) if why.contains("refused")),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_reach_a_real_broker_at_every_qos() {
    let Some(broker) = MosquittoServer::start() else {
        return;
    };
    let mut subscriber = broker.subscribe("telemetry-topic");
    let mut ctx = MqttCtx::new(test_permit(&["mqtt://127.0.0.1:*"], &[]));
    let c = open(&mut ctx, &broker.url("runner-unit")).await.unwrap();
    for (qos, payload) in [
        (Qos::AtMostOnce, &b"zero"[..]),
        (Qos::AtLeastOnce, b"one"),
        (Qos::ExactlyOnce, b"two"),
    ] {
        assert_eq!(
            publish(&mut ctx, c, "telemetry-topic", payload, qos).await,
            Ok(())
        );
        let (topic, got) = tokio::task::block_in_place(|| subscriber.next_message());
        assert_eq!(
            (topic.as_str(), got.as_slice()),
            ("telemetry-topic", payload)
        );
    }
    HostConnection::drop(&mut ctx, Resource::new_own(c))
        .await
        .unwrap();
    assert_eq!(
        publish(&mut ctx, c, "t", b"x", Qos::AtMostOnce).await,
        Err(Error::Other(
            "could not find connection for resource".into()
        ))
    );
}
