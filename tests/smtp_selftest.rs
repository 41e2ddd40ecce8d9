mod support;

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use support::smtp::{Behaviour, TestSmtp};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn plain(subject: &str, body: &str) -> Message {
    Message::builder()
        .from("Sender <from@example.org>".parse::<Mailbox>().unwrap())
        .to("to@example.net".parse::<Mailbox>().unwrap())
        .subject(subject)
        .body(body.to_string())
        .unwrap()
}

fn transport(smtp: &TestSmtp) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(smtp.addr().port())
        .timeout(Some(Duration::from_millis(500)))
        .build()
}

#[tokio::test]
async fn two_mails_one_connection() {
    let smtp = TestSmtp::start().await;
    assert_eq!(smtp.url(), format!("smtp://127.0.0.1:{}", smtp.addr().port()));
    let mut conn = AsyncSmtpConnection::connect_tokio1(
        smtp.addr(),
        Some(Duration::from_secs(2)),
        &ClientId::Domain("client.test".into()),
        None,
        None,
    )
    .await
    .unwrap();

    let m1 = plain("Grüße first", "line one\n.leading dot\n..two dots\nend");
    conn.send(m1.envelope(), &m1.formatted()).await.unwrap();
    let m2 = Message::builder()
        .from("from@example.org".parse::<Mailbox>().unwrap())
        .to("a@example.net".parse::<Mailbox>().unwrap())
        .cc("b@example.net".parse::<Mailbox>().unwrap())
        .subject("second")
        .multipart(MultiPart::alternative_plain_html(
            "plain text €".to_string(),
            "<p>html</p>".to_string(),
        ))
        .unwrap();
    conn.send(m2.envelope(), &m2.formatted()).await.unwrap();
    conn.quit().await.unwrap();

    let got = smtp.wait_for(2, Duration::from_secs(2)).await;
    assert_eq!(smtp.connections(), 1);
    assert_eq!(smtp.count(), 2);
    assert_eq!(got[0].mail_from, "from@example.org");
    assert_eq!(got[0].rcpt_to, vec!["to@example.net"]);
    assert_eq!(got[0].header("subject").as_deref(), Some("Grüße first"));
    assert_eq!(got[0].text_body(), "line one\n.leading dot\n..two dots\nend");
    assert!(got[0].html_body().is_none());
    assert!(!got[0].data.ends_with(b".\r\n"));
    assert!(got[0].headers_all().iter().any(|(k, v)| k == "From" && v.contains("from@example.org")));
    assert_eq!(got[1].rcpt_to, vec!["a@example.net", "b@example.net"]);
    assert_eq!(got[1].text_body().trim_end(), "plain text €");
    assert_eq!(got[1].html_body().unwrap().trim_end(), "<p>html</p>");
    smtp.stop().await;
}

#[tokio::test]
async fn rejections_and_stop() {
    let smtp = TestSmtp::start().await;
    let t = transport(&smtp);
    t.send(plain("ok", "hello")).await.unwrap();

    smtp.set_behaviour(Behaviour::RejectData(550, "no such user".into()));
    let e = t.send(plain("rej", "x")).await.unwrap_err();
    assert!(e.is_permanent(), "{e:?}");

    smtp.set_behaviour(Behaviour::RejectData(451, "try later".into()));
    let e = t.send(plain("rej", "x")).await.unwrap_err();
    assert!(e.is_transient(), "{e:?}");

    smtp.set_behaviour(Behaviour::RejectRcpt(550, "unknown".into()));
    let e = t.send(plain("rej", "x")).await.unwrap_err();
    assert!(e.is_permanent(), "{e:?}");
    assert_eq!(smtp.count(), 1);

    smtp.set_behaviour(Behaviour::Hang);
    let started = std::time::Instant::now();
    assert!(t.send(plain("hang", "x")).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(2));

    // A connection held open across stop() must be dropped by it.
    let mut held = tokio::net::TcpStream::connect(smtp.addr()).await.unwrap();
    let addr = smtp.addr();
    let conns = smtp.connections();
    assert!(conns >= 6, "{conns}");
    smtp.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    assert!(t.send(plain("down", "x")).await.is_err());
    let mut buf = [0u8; 16];
    let n = tokio::io::AsyncReadExt::read(&mut held, &mut buf).await.unwrap_or(0);
    assert_eq!(n, 0, "held connection should be closed");

    // Bring it back on the same port.
    let again = TestSmtp::start_on(addr).await;
    assert_eq!(again.addr(), addr);
    t.send(plain("back", "again")).await.unwrap();
    assert_eq!(again.wait_for(1, Duration::from_secs(1)).await[0].header("Subject").unwrap(), "back");
    again.stop().await;
}

#[tokio::test]
async fn raw_protocol_bare_lf() {
    let smtp = TestSmtp::start().await;
    let stream = tokio::net::TcpStream::connect(smtp.addr()).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut line = String::new();
    let mut expect = async |w: &mut tokio::net::tcp::OwnedWriteHalf, send: &str, code: &str| {
        if !send.is_empty() {
            w.write_all(send.as_bytes()).await.unwrap();
        }
        loop {
            line.clear();
            r.read_line(&mut line).await.unwrap();
            assert!(line.starts_with(code), "sent {send:?}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    };
    expect(&mut w, "", "220").await;
    expect(&mut w, "EHLO x\n", "250").await;
    expect(&mut w, "FOO\r\n", "502").await;
    expect(&mut w, "NOOP\n", "250").await;
    expect(&mut w, "mail from:<a@b> BODY=8BITMIME SMTPUTF8\n", "250").await;
    expect(&mut w, "RSET\n", "250").await;
    expect(&mut w, "RCPT TO:<c@d>\n", "503").await;
    expect(&mut w, "MAIL FROM:<>\n", "250").await;
    expect(&mut w, "RCPT TO:<c@d>\n", "250").await;
    expect(&mut w, "DATA\n", "354").await;
    expect(&mut w, "Subject: raw\n\n..x\n.\n", "250").await;
    expect(&mut w, "QUIT\n", "221").await;
    let got = smtp.received();
    assert_eq!(got[0].mail_from, "");
    assert_eq!(got[0].data, b"Subject: raw\r\n\r\n.x\r\n");
    assert_eq!(got[0].text_body(), ".x\n");

    // Abrupt close mid-DATA: nothing recorded, server still fine.
    let mut s = tokio::net::TcpStream::connect(smtp.addr()).await.unwrap();
    s.write_all(b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nSubject: half\r\n").await.unwrap();
    drop(s);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(smtp.count(), 1);
}

#[tokio::test]
#[should_panic(expected = "waiting for 1 mail(s); 0 arrived")]
async fn wait_for_times_out() {
    let smtp = TestSmtp::start().await;
    smtp.wait_for(1, Duration::from_millis(50)).await;
}
