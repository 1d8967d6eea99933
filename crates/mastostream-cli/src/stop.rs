//! When the user (or the system) asks the command to stop.

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM: what systemd,
/// Kubernetes and `kill` send, which would otherwise end the process
/// before it could finish its output.
pub async fn requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
