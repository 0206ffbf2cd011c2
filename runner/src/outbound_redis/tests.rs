use super::*;
use crate::permit::test_permit;
use edge_testkit::RedisServer;
use std::sync::atomic::Ordering;

async fn open(ctx: &mut RedisCtx, address: &str) -> Result<u32, Error> {
    HostConnection::open(ctx, address.to_string())
        .await
        .unwrap()
        .map(|r| r.rep())
}

fn conn(rep: u32) -> Resource<Connection> {
    Resource::new_borrow(rep)
}

async fn exec(
    ctx: &mut RedisCtx,
    c: u32,
    cmd: &str,
    args: Vec<RedisParameter>,
) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
    HostConnection::execute(ctx, conn(c), cmd.to_string(), args).await
}

#[tokio::test]
async fn an_address_outside_allowed_outbound_hosts_is_invalid_address_and_never_dialled() {
    let (port, hits) = edge_testkit::counting_listener();
    let mut ctx = RedisCtx::new(test_permit(&["redis://localhost:1"], &[]));
    for address in [
        format!("redis://127.0.0.1:{port}"),
        format!("redis://localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "not an address".to_string(),
    ] {
        assert_eq!(open(&mut ctx, &address).await, Err(Error::InvalidAddress));
    }
    let mut none = RedisCtx::new(test_permit(&[], &[]));
    assert_eq!(
        open(&mut none, &format!("redis://127.0.0.1:{port}")).await,
        Err(Error::InvalidAddress)
    );
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_allowed_address_the_client_refuses_is_invalid_address() {
    let mut ctx = RedisCtx::new(test_permit(&["*://*:*"], &[]));
    assert_eq!(
        open(&mut ctx, "http://127.0.0.1:6379").await,
        Err(Error::InvalidAddress)
    );
}

#[tokio::test]
async fn an_allow_list_that_cannot_be_resolved_is_other() {
    let mut ctx = RedisCtx::new(test_permit(&["redis://{{ redis_host }}"], &[]));
    let Err(Error::Other(why)) = open(&mut ctx, "redis://localhost").await else {
        panic!("an unresolvable allow-list is other(...)");
    };
    assert!(why.contains("redis_host"), "{why}");
}

#[tokio::test]
async fn a_server_that_is_not_there_is_other_with_the_clients_error() {
    let port = edge_testkit::free_port();
    let mut ctx = RedisCtx::new(test_permit(&["redis://127.0.0.1:*"], &[]));
    let Err(Error::Other(why)) = open(&mut ctx, &format!("redis://127.0.0.1:{port}")).await else {
        panic!("a refused connection is other(...)");
    };
    assert!(why.to_lowercase().contains("refused"), "{why}");
}

#[tokio::test]
async fn every_command_reaches_a_real_redis_allowed_through_a_template() {
    let server = RedisServer::start();
    let mut ctx = RedisCtx::new(test_permit(
        &["redis://{{ redis_host }}:{{ redis_port }}"],
        &[
            ("redis_host", "127.0.0.1"),
            ("redis_port", &server.port.to_string()),
        ],
    ));
    let c = open(&mut ctx, &server.url(0)).await.unwrap();

    let set = HostConnection::set(&mut ctx, conn(c), "k".into(), b"Eureka!".to_vec());
    assert_eq!(set.await.unwrap(), Ok(()));
    let got = HostConnection::get(&mut ctx, conn(c), "k".into())
        .await
        .unwrap();
    assert_eq!(got, Ok(Some(b"Eureka!".to_vec())));
    let missing = HostConnection::get(&mut ctx, conn(c), "nope".into())
        .await
        .unwrap();
    assert_eq!(missing, Ok(None));

    HostConnection::set(&mut ctx, conn(c), "n".into(), b"0".to_vec())
        .await
        .unwrap()
        .unwrap();
    let incr = HostConnection::incr(&mut ctx, conn(c), "n".into())
        .await
        .unwrap();
    assert_eq!(incr, Ok(1));
    let Err(Error::Other(why)) = HostConnection::incr(&mut ctx, conn(c), "k".into())
        .await
        .unwrap()
    else {
        panic!("INCR of text is other(...)");
    };
    assert!(why.contains("not an integer"), "{why}");

    let del = HostConnection::del(&mut ctx, conn(c), vec!["k".into(), "n".into(), "x".into()]);
    assert_eq!(del.await.unwrap(), Ok(2));

    let sadd = HostConnection::sadd(&mut ctx, conn(c), "s".into(), vec!["a".into(), "b".into()]);
    assert_eq!(sadd.await.unwrap(), Ok(2));
    let mut members = HostConnection::smembers(&mut ctx, conn(c), "s".into())
        .await
        .unwrap()
        .unwrap();
    members.sort();
    assert_eq!(members, ["a", "b"]);
    let srem = HostConnection::srem(&mut ctx, conn(c), "s".into(), vec!["a".into(), "z".into()]);
    assert_eq!(srem.await.unwrap(), Ok(1));
    // SADD to a string key: the server's WRONGTYPE is other(...), as in
    // Spin (its type-error is for replies the client cannot convert).
    HostConnection::set(&mut ctx, conn(c), "str".into(), b"v".to_vec())
        .await
        .unwrap()
        .unwrap();
    let Err(Error::Other(why)) =
        HostConnection::sadd(&mut ctx, conn(c), "str".into(), vec!["a".into()])
            .await
            .unwrap()
    else {
        panic!("SADD to a string is other(...)");
    };
    assert!(why.contains("WRONGTYPE"), "{why}");

    let publish = HostConnection::publish(&mut ctx, conn(c), "ch".into(), b"hi".to_vec());
    assert_eq!(publish.await.unwrap(), Ok(()));

    let bin = |s: &str| RedisParameter::Binary(s.as_bytes().to_vec());
    assert_eq!(
        exec(&mut ctx, c, "set", vec![bin("e"), bin("Eureka!")])
            .await
            .unwrap(),
        Ok(vec![RedisResult::Status("OK".into())])
    );
    assert_eq!(
        exec(&mut ctx, c, "append", vec![bin("e"), bin(" I've got it!")])
            .await
            .unwrap(),
        Ok(vec![RedisResult::Int64(20)])
    );
    assert_eq!(
        exec(&mut ctx, c, "get", vec![bin("e")]).await.unwrap(),
        Ok(vec![RedisResult::Binary(b"Eureka! I've got it!".to_vec())])
    );
    assert_eq!(
        exec(&mut ctx, c, "get", vec![bin("none")]).await.unwrap(),
        Ok(vec![RedisResult::Nil])
    );
    assert_eq!(
        exec(
            &mut ctx,
            c,
            "incrby",
            vec![bin("i"), RedisParameter::Int64(5)]
        )
        .await
        .unwrap(),
        Ok(vec![RedisResult::Int64(5)])
    );
    // An array reply is flattened.
    exec(&mut ctx, c, "rpush", vec![bin("l"), bin("x"), bin("y")])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        exec(&mut ctx, c, "lrange", vec![bin("l"), bin("0"), bin("-1")])
            .await
            .unwrap(),
        Ok(vec![
            RedisResult::Binary(b"x".to_vec()),
            RedisResult::Binary(b"y".to_vec())
        ])
    );
    // No response deadline, as in Spin: a blocking command past the
    // client's default 500 ms still answers.
    let started = std::time::Instant::now();
    assert_eq!(
        exec(&mut ctx, c, "blpop", vec![bin("empty"), bin("1")])
            .await
            .unwrap(),
        Ok(vec![RedisResult::Nil])
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    let Err(Error::Other(why)) = exec(&mut ctx, c, "nosuchcommand", vec![]).await.unwrap() else {
        panic!("an unknown command is other(...)");
    };
    assert!(why.contains("unknown command"), "{why}");

    HostConnection::drop(&mut ctx, Resource::new_own(c))
        .await
        .unwrap();
    let stale = HostConnection::get(&mut ctx, conn(c), "k".into())
        .await
        .unwrap();
    assert_eq!(
        stale,
        Err(Error::Other(
            "could not find connection for resource".into()
        ))
    );
}
