//! `mastostream stream` against the test server's emulations of other
//! servers: each output line names the stream as the user asked for it
//! (Mastodon's array), whatever label the server put on the event.

mod common;

use common::{finish, mastostream, wait_for_streams};
use mastostream_proto::Channel;
use mastostream_testkit::{Flavour, Publish, TestServer};

#[test]
fn a_list_stream_from_every_server_prints_mastodon_lines() {
    for flavour in [
        Flavour::Mastodon,
        Flavour::Mastodon41,
        Flavour::GlitchSoc,
        Flavour::Pleroma,
        Flavour::Akkoma,
        Flavour::GoToSocial,
        Flavour::Iceshrimp,
    ] {
        let server = TestServer::builder()
            .flavour(flavour)
            .start_blocking()
            .unwrap();
        let child = mastostream(&[
            "stream",
            "--server",
            &server.url(),
            "--token",
            "t",
            "--limit",
            "1",
            "list=42",
        ])
        .spawn()
        .unwrap();
        wait_for_streams(&server, &[&["list", "42"]]);
        // Labelled `["list","42"]` by the Mastodons, `["list:42"]` by Akkoma and GoToSocial, unlabelled by
        // Pleroma and Akkoma, a `status.update` on Iceshrimp.NET's lists.
        server.publish(Publish::new("delete", "9zXq2").to(Channel::List("42".into())));
        let output = finish(child);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{flavour:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "{\"stream\":[\"list\",\"42\"],\"event\":\"delete\",\"payload\":\"9zXq2\"}\n",
            "{flavour:?}"
        );
    }
}

/// A stream the server does not offer ends the command with exit 4 and a
/// line naming the server and the stream, at once, instead of a silence
/// (GoToSocial accepts a hashtag stream and never pushes to it).
#[test]
fn a_stream_the_server_lacks_is_named_with_the_server() {
    for (flavour, stream, says) in [
        (
            Flavour::GoToSocial,
            "hashtag=rust",
            "mastostream: hashtag=rust: GoToSocial (127.0.0.1:",
        ),
        (
            Flavour::Akkoma,
            "hashtag:local=rust",
            "mastostream: hashtag:local=rust: Akkoma (127.0.0.1:",
        ),
    ] {
        let server = TestServer::builder()
            .flavour(flavour)
            .start_blocking()
            .unwrap();
        for transport in ["auto", "ws"] {
            let child = mastostream(&[
                "stream",
                "--server",
                &server.url(),
                "--token",
                "t",
                "--transport",
                transport,
                stream,
            ])
            .spawn()
            .unwrap();
            let output = finish(child);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(4),
                "{flavour:?} {transport}: {stderr}"
            );
            let line = stderr
                .lines()
                .find(|line| line.starts_with(says))
                .unwrap_or_else(|| panic!("{flavour:?} {transport}: {stderr}"));
            assert!(
                line.contains(&format!("does not stream {stream}: ")),
                "{line}"
            );
            assert!(output.stdout.is_empty(), "{flavour:?} {transport}");
        }
    }
}
